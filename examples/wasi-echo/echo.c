/*
 * wasi-echo: a WASI command for Jobico's `kind: wasi` runtimes, in plain C with stdio.
 *
 * A WASI command is an ordinary program: Jobico runs it once per event, in a fresh instance,
 * with the event (compact JSON) on stdin. What it prints on stdout is the result, its exit
 * status is the code, and every line it writes to stderr becomes a log line (level 6).
 *
 * This one writes the event back on stdout and exits 0, after a line on stderr saying how
 * many bytes it read. An event whose top level has "fail": true is answered with
 * "asked to fail" and exit status 3 instead (an `error` answer, chained to evwasi_error).
 * Exit statuses 1 to 125 are answers; wasmtime refuses 126 and above, which Jobico then records
 * as a trap.
 *
 * No Jobico header or export is needed: the module imports only WASI (wasi-libc's stdio).
 * Build: see build.sh (zig cc from PyPI `ziglang`, wasm32-wasi, the default command model).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_ASKED_TO_FAIL = 3 };

/* All of stdin, however long; NULL if memory runs out. */
static char *read_all(FILE *in, size_t *len) {
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, in)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (bigger == NULL) free(buf);
            buf = bigger;
        }
    }
    *len = n;
    return buf;
}

/*
 * Does the top-level object have "fail":true? Events arrive as compact JSON with sorted keys
 * and no spaces, so a scan for those exact bytes is enough; it skips strings and counts
 * nesting so a nested {"fail":true} does not count (the same check as examples/c-echo).
 */
static int wants_failure(const char *p, size_t len) {
    static const char key[] = "\"fail\":true";
    const size_t klen = sizeof key - 1;
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        else if (c == '"') {
            if (depth == 1 && len - i >= klen && memcmp(p + i, key, klen) == 0) return 1;
            in_string = 1;
        }
    }
    return 0;
}

int main(void) {
    size_t len;
    char *event = read_all(stdin, &len);
    if (event == NULL) {
        fputs("wasi-echo: out of memory reading the event\n", stderr);
        return 1;
    }
    fprintf(stderr, "wasi-echo: read %zu bytes\n", len);
    if (wants_failure(event, len)) {
        fputs("wasi-echo: the event asks to fail (\"fail\": true); exit status 3\n", stderr);
        fputs("asked to fail", stdout);
        return EXIT_ASKED_TO_FAIL;
    }
    fwrite(event, 1, len, stdout);
    return 0; /* returning from main flushes stdout and exits with status 0 */
}
