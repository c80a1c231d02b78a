/*
 * c-echo: a Jobico jobicolet written in C (guest ABI "ver 0": free(ptr), as TinyGo modules).
 *
 * For every event it logs the event (level 6, "no level") and answers the event's bytes back
 * with code 0. An event whose top level has "fail": true is answered with code 500 and an
 * error log (level 3) instead, so the package's `error` result event can be seen in action.
 *
 * The host calls, per event (see examples/README.md and docs/contract.md#guest-abi):
 *   p = malloc(len); copy the event (compact JSON) to p
 *   r = malloc(16)
 *   event(r, p, len)                 -> writes {code u64, (result_ptr << 32) | result_len u64}
 *   free(result_ptr) if result_ptr != 0, then free(r), free(p)
 * So the result must be a block of its own from malloc: never the event buffer, never static
 * data, because the host frees it.
 *
 * Build: see build.sh (zig cc from PyPI `ziglang`, wasm32-wasi, libc's malloc/free).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The one host function: log(level, ptr, len); the bytes are UTF-8. */
__attribute__((import_module("env"), import_name("log")))
void host_log(int32_t level, const char *ptr, int32_t len);

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_NONE = 6 };

static void log_str(int32_t level, const char *s) { host_log(level, s, (int32_t)strlen(s)); }

/* The allocator the host uses to hand the event in and to give results back. */
__attribute__((export_name("malloc"))) void *guest_malloc(uint32_t size) {
    return malloc(size ? size : 1);
}

__attribute__((export_name("free"))) void guest_free(void *ptr) { free(ptr); }

/* Called once per instance, before the first event. Nothing to set up here. */
__attribute__((export_name("init"))) void guest_init(void) {}

/*
 * Does the top-level object have "fail":true? Events arrive as compact JSON (the platform sends
 * sorted keys with no spaces), so a scan for the exact bytes `"fail":true` is enough; the scan
 * skips strings and counts nesting so that a nested {"fail":true} (for instance the original
 * event inside a chained result event) does not count. This is a check, not a JSON parser.
 */
static int wants_failure(const char *p, uint32_t len) {
    static const char key[] = "\"fail\":true";
    const uint32_t klen = sizeof key - 1;
    int depth = 0, in_string = 0;
    for (uint32_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\') i++;            /* skip the escaped character */
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

/* A result the host can free: a copy of `len` bytes in a block from malloc. */
static uint64_t answer(const char *bytes, uint32_t len) {
    char *out = malloc(len ? len : 1);
    if (out == NULL) return 0; /* result_ptr 0: an empty result, nothing to free */
    memcpy(out, bytes, len);
    return ((uint64_t)(uintptr_t)out << 32) | len;
}

/*
 * The main function, in the wasm32 "sret" form the host calls: event(ret, ptr, len), which is
 * what C compilers make of `struct {uint64_t code, result;} event(char *ptr, uint32_t len)`.
 * Written out explicitly here so the ABI does not depend on the compiler's struct-return rules.
 */
__attribute__((export_name("event")))
void event(uint64_t ret[2], const char *ptr, uint32_t len) {
    host_log(LOG_NONE, ptr, (int32_t)len);
    if (wants_failure(ptr, len)) {
        static const char why[] = "asked to fail";
        log_str(LOG_ERROR, "c-echo: the event asks to fail (\"fail\": true); answering 500");
        ret[0] = 500;
        ret[1] = answer(why, sizeof why - 1);
        return;
    }
    ret[0] = 0;
    ret[1] = answer(ptr, len);
}
