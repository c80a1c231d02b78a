;; WASI command sleeping through poll_oneoff on a relative monotonic clock: 60 s when stdin
;; starts with 'L', else 10 ms; then writes "slept" to stdout and returns (exit status 0).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 300) "slept")
  (func (export "_start")
    ;; read the first byte of stdin to 400
    (i32.store (i32.const 0) (i32.const 400))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; subscription at 64: userdata 7, tag 0 (clock), clock id 1 (monotonic), timeout, flags 0
    (i64.store (i32.const 64) (i64.const 7))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88)
      (select (i64.const 60000000000) (i64.const 10000000)
              (i32.eq (i32.load8_u (i32.const 400)) (i32.const 76))))
    (if (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160))
      (then unreachable))
    ;; exactly one event, for our subscription
    (if (i32.ne (i32.load (i32.const 160)) (i32.const 1)) (then unreachable))
    (if (i64.ne (i64.load (i32.const 128)) (i64.const 7)) (then unreachable))
    (i32.store (i32.const 0) (i32.const 300))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
