/* labctl smoke: libzmq headers + pkg-config + C toolchain work; prints the libzmq version after
 * a real message round trip between two PAIR sockets over inproc. */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

int main(void)
{
    int major, minor, patch;
    char buf[16] = {0};
    void *ctx = zmq_ctx_new();
    void *a = zmq_socket(ctx, ZMQ_PAIR);
    void *b = zmq_socket(ctx, ZMQ_PAIR);
    int timeout = 2000;

    zmq_setsockopt(b, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_bind(a, "inproc://labctl-smoke") != 0 || zmq_connect(b, "inproc://labctl-smoke") != 0) {
        fprintf(stderr, "bind/connect: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    if (zmq_send(a, "ping", 4, 0) != 4 || zmq_recv(b, buf, sizeof buf - 1, 0) != 4 || strcmp(buf, "ping") != 0) {
        fprintf(stderr, "inproc round trip failed: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
    zmq_version(&major, &minor, &patch);
    printf("%d.%d.%d\n", major, minor, patch);
    return 0;
}
