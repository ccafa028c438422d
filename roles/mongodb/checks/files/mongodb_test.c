/*
 * mongodb_test.c - the seed's MongoDB C driver example, ported from the 2012 legacy driver
 * (mongo_connect / MONGO_OK) to libmongoc 1.23 (Debian 12: libmongoc-dev).
 *
 * Build: gcc -std=c99 -o mongodb_test mongodb_test.c $(pkg-config --cflags --libs libmongoc-1.0)
 *
 * Usage: mongodb_test --version
 *        mongodb_test [URI|-] [COLLECTION]
 *   URI         connection string (default mongodb://127.0.0.1:27017/test); "-" reads it from the
 *               first line of stdin, so that a password never shows on a command line.
 *   COLLECTION  collection in the URI's database (default "foo", as in the seed's shell session).
 *
 * It pings the server, inserts one document, finds every document of the collection and prints
 * them (relaxed extended JSON, one per line, in natural order), then "N documents".
 * Exit status: 0 ok, 1 connection/server error, 2 usage or bad URI.
 */
#define _POSIX_C_SOURCE 200809L /* struct addrinfo in libmongoc's headers under -std=c99 */

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_URI "mongodb://127.0.0.1:27017/test"

static int read_uri_line(char *buf, size_t size)
{
    if (!fgets(buf, (int) size, stdin)) {
        return 0;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] != '\0';
}

int main(int argc, char *argv[])
{
    char line[4096];
    const char *uri_string = DEFAULT_URI;
    const char *collection_name = argc > 2 ? argv[2] : "foo";
    const char *db_name;
    mongoc_uri_t *uri;
    mongoc_client_t *client;
    mongoc_collection_t *collection;
    mongoc_cursor_t *cursor;
    const bson_t *doc;
    bson_t *command, *insert, *query;
    bson_t reply;
    bson_error_t error;
    char *str;
    long count = 0;
    int status = 0;

    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("mongodb_test (libmongoc %s, libbson %s)\n", mongoc_get_version(), bson_get_version());
        return 0;
    }
    if (argc > 3 || (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: %s --version | [URI|-] [COLLECTION]\n", argv[0]);
        return 2;
    }
    if (argc > 1 && strcmp(argv[1], "-") == 0) {
        if (!read_uri_line(line, sizeof line)) {
            fprintf(stderr, "no URI on stdin\n");
            return 2;
        }
        uri_string = line;
    } else if (argc > 1) {
        uri_string = argv[1];
    }

    mongoc_init();

    uri = mongoc_uri_new_with_error(uri_string, &error);
    if (!uri) {
        /* keep it short: a reason, never the whole (password-bearing) URI */
        fprintf(stderr, "invalid URI: %.100s\n", error.message);
        mongoc_cleanup();
        return 2;
    }
    db_name = mongoc_uri_get_database(uri);
    if (!db_name) {
        db_name = "test";
    }

    client = mongoc_client_new_from_uri(uri);
    if (!client) {
        fprintf(stderr, "could not create a client\n");
        mongoc_uri_destroy(uri);
        mongoc_cleanup();
        return 2;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(client, "labctl-mongodb_test");

    /* The seed only connected; "ping" is how a connection is proven now. */
    command = BCON_NEW("ping", BCON_INT32(1));
    if (!mongoc_client_command_simple(client, "admin", command, NULL, &reply, &error)) {
        fprintf(stderr, "connection failed: %s (domain %u, code %u)\n", error.message, error.domain, error.code);
        status = 1;
        goto done_command;
    }
    printf("MONGO_OK: connection succeeded\n");

    collection = mongoc_client_get_collection(client, db_name, collection_name);

    insert = BCON_NEW("from", BCON_UTF8("mongodb_test.c"),
                      "driver", BCON_UTF8(mongoc_get_version()),
                      "a", BCON_INT32(4));
    if (!mongoc_collection_insert_one(collection, insert, NULL, NULL, &error)) {
        fprintf(stderr, "insert failed: %s (code %u)\n", error.message, error.code);
        status = 1;
        goto done_insert;
    }
    printf("inserted 1 document into %s.%s\n", db_name, collection_name);

    query = bson_new();
    cursor = mongoc_collection_find_with_opts(collection, query, NULL, NULL);
    while (mongoc_cursor_next(cursor, &doc)) {
        str = bson_as_relaxed_extended_json(doc, NULL);
        printf("%s\n", str);
        bson_free(str);
        count++;
    }
    if (mongoc_cursor_error(cursor, &error)) {
        fprintf(stderr, "find failed: %s (code %u)\n", error.message, error.code);
        status = 1;
    } else {
        printf("%ld documents\n", count);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(query);

done_insert:
    bson_destroy(insert);
    mongoc_collection_destroy(collection);
done_command:
    bson_destroy(&reply);
    bson_destroy(command);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return status;
}
