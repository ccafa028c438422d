/*
 * memcached_mem_test.c - the seed's mem_test2.c, grown into a smoke test.
 *
 * Usage: mem_test COUNT PREFIX HOST:PORT [HOST:PORT ...]
 * Env:   MEMCACHED_USERNAME / MEMCACHED_PASSWORD switch on the binary protocol and SASL.
 *
 * Connects to every server with consistent hashing (MEMCACHED_BEHAVIOR_DISTRIBUTION
 * = MEMCACHED_DISTRIBUTION_CONSISTENT), sets COUNT keys PREFIX-<i>, asks
 * memcached_server_by_key where each one lives, fetches them all back with one mget and
 * compares the values, then deletes them. Prints machine-readable lines:
 *   SERVER <host>:<port> <keys>
 *   SET <ok> <failed>
 *   FETCH <ok> <mismatched>
 *   DELETE <ok> <failed>
 * and exits non-zero when anything went wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libmemcached/memcached.h>

#define MAX_SERVERS 16

int main(int argc, char *argv[])
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s COUNT PREFIX HOST:PORT [HOST:PORT ...]\n", argv[0]);
        return 2;
    }
    long count = strtol(argv[1], NULL, 10);
    const char *prefix = argv[2];
    int nservers = argc - 3;
    if (count <= 0 || nservers > MAX_SERVERS) {
        fprintf(stderr, "bad COUNT or too many servers\n");
        return 2;
    }

    memcached_st *memc = memcached_create(NULL);
    memcached_return_t rc;
    memcached_server_st *servers = NULL;
    char names[MAX_SERVERS][160];
    long per_server[MAX_SERVERS] = {0};

    /* connect multi server */
    for (int s = 0; s < nservers; s++) {
        char host[128];
        snprintf(host, sizeof host, "%s", argv[3 + s]);
        char *colon = strrchr(host, ':');
        if (!colon) {
            fprintf(stderr, "server %s: expected HOST:PORT\n", host);
            return 2;
        }
        *colon = '\0';
        in_port_t port = (in_port_t)atoi(colon + 1);
        snprintf(names[s], sizeof names[s], "%s:%u", host, (unsigned)port);
        servers = memcached_server_list_append(servers, host, port, &rc);
        if (rc != MEMCACHED_SUCCESS) {
            fprintf(stderr, "append %s: %s\n", names[s], memcached_strerror(memc, rc));
            return 1;
        }
    }
    rc = memcached_server_push(memc, servers);
    memcached_server_free(servers);
    if (rc != MEMCACHED_SUCCESS) {
        fprintf(stderr, "server_push: %s\n", memcached_strerror(memc, rc));
        return 1;
    }
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT);

    const char *user = getenv("MEMCACHED_USERNAME");
    const char *pass = getenv("MEMCACHED_PASSWORD");
    if (user && *user) {
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
        rc = memcached_set_sasl_auth_data(memc, user, pass ? pass : "");
        if (rc != MEMCACHED_SUCCESS) {
            fprintf(stderr, "sasl: %s\n", memcached_strerror(memc, rc));
            return 1;
        }
    }

    char **keys = calloc((size_t)count, sizeof *keys);
    size_t *key_length = calloc((size_t)count, sizeof *key_length);
    char **values = calloc((size_t)count, sizeof *values);
    if (!keys || !key_length || !values) return 1;

    /* save multi data, and note where each key lives */
    long set_ok = 0, set_failed = 0;
    for (long i = 0; i < count; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s-%ld", prefix, i);
        keys[i] = strdup(buf);
        key_length[i] = strlen(buf);
        snprintf(buf, sizeof buf, "This is c value %ld of %s", i, prefix);
        values[i] = strdup(buf);
        rc = memcached_set(memc, keys[i], key_length[i], values[i], strlen(values[i]), (time_t)180, (uint32_t)0);
        if (rc == MEMCACHED_SUCCESS) {
            set_ok++;
        } else {
            set_failed++;
            fprintf(stderr, "set %s: %s\n", keys[i], memcached_strerror(memc, rc));
            continue;
        }
        const memcached_instance_st *inst = memcached_server_by_key(memc, keys[i], key_length[i], &rc);
        if (!inst) {
            fprintf(stderr, "server_by_key %s: %s\n", keys[i], memcached_strerror(memc, rc));
            return 1;
        }
        char where[160];
        snprintf(where, sizeof where, "%s:%u", memcached_server_name(inst), (unsigned)memcached_server_port(inst));
        for (int s = 0; s < nservers; s++) {
            if (strcmp(where, names[s]) == 0) {
                per_server[s]++;
                break;
            }
        }
    }
    for (int s = 0; s < nservers; s++)
        printf("SERVER %s %ld\n", names[s], per_server[s]);
    printf("SET %ld %ld\n", set_ok, set_failed);

    /* fetch multi data */
    long fetch_ok = 0, fetch_bad = 0;
    rc = memcached_mget(memc, (const char *const *)keys, key_length, (size_t)count);
    if (rc != MEMCACHED_SUCCESS) {
        fprintf(stderr, "mget: %s\n", memcached_strerror(memc, rc));
        return 1;
    }
    memcached_result_st *result;
    while ((result = memcached_fetch_result(memc, NULL, &rc)) != NULL) {
        /* the result's key is not NUL-terminated (binary protocol): copy it first */
        char k[MEMCACHED_MAX_KEY + 1];
        size_t klen = memcached_result_key_length(result);
        if (klen > MEMCACHED_MAX_KEY) klen = MEMCACHED_MAX_KEY;
        memcpy(k, memcached_result_key_value(result), klen);
        k[klen] = '\0';
        long i = -1;
        size_t plen = strlen(prefix);
        if (klen > plen + 1 && strncmp(k, prefix, plen) == 0 && k[plen] == '-')
            i = strtol(k + plen + 1, NULL, 10);
        if (i >= 0 && i < count && memcached_result_length(result) == strlen(values[i])
            && memcmp(memcached_result_value(result), values[i], strlen(values[i])) == 0) {
            fetch_ok++;
        } else {
            fetch_bad++;
            fprintf(stderr, "fetch %s: unexpected value\n", k);
        }
        memcached_result_free(result);
    }
    printf("FETCH %ld %ld\n", fetch_ok, fetch_bad);

    /* delete multi data */
    long del_ok = 0, del_failed = 0;
    for (long i = 0; i < count; i++) {
        rc = memcached_delete(memc, keys[i], key_length[i], (time_t)0);
        if (rc == MEMCACHED_SUCCESS) {
            del_ok++;
        } else {
            del_failed++;
            fprintf(stderr, "delete %s: %s\n", keys[i], memcached_strerror(memc, rc));
        }
    }
    printf("DELETE %ld %ld\n", del_ok, del_failed);

    for (long i = 0; i < count; i++) {
        free(keys[i]);
        free(values[i]);
    }
    free(keys);
    free(key_length);
    free(values);
    memcached_free(memc);
    return (set_failed || fetch_bad || fetch_ok != count || del_failed) ? 1 : 0;
}
