;; Jobicolet that takes 50 ms of wall-clock time per event without using the CPU (a sleep
;; through WASI poll_oneoff, as a guest waiting on a slow service would), then echoes the event.
;; For the fair-sharing benchmark: a flood of these holds every guest thread.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "init"))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  ;; The host frees an event's blocks together after the call: the heap starts over.
  (func (export "free") (param i32) (global.set $bump (i32.const 1024)))
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $out i32)
    ;; subscription at 64: userdata 1, tag 0 (clock), clock 1 (monotonic), 50 ms, relative
    (i64.store (i32.const 64) (i64.const 1))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88) (i64.const 50000000))
    (i64.store (i32.const 96) (i64.const 0))
    (i32.store16 (i32.const 104) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
    (local.set $out (call $malloc (local.get $len)))
    (memory.copy (local.get $out) (local.get $p) (local.get $len))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
              (i64.extend_i32_u (local.get $len))))))
