;; A hostile jobicolet calling WASI poll_oneoff in a loop with 1,398,000 subscriptions, every one
;; ready at once (zeroed memory reads as clocks of timeout 0): without a bound the host walks
;; them all in Python on each call, past the deadline and through gigabytes.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1024)
  (func (export "init"))
  (func (export "malloc") (param i32) (result i32) (i32.const 67100000))
  (func (export "free") (param i32))
  (func (export "event") (param i32 i32 i32)
    ;; subscriptions at 0 (48 bytes each, all of memory), their events over them (32 each)
    (loop $again
      (drop (call $poll (i32.const 0) (i32.const 0) (i32.const 1398000) (i32.const 67108000)))
      (br $again))))
