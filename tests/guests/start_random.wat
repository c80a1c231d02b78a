;; A hostile jobicolet whose start function never ends: it fills 64 MiB with WASI random_get
;; over and over. Each call costs a few units of fuel and a fifth of a second in host code, so
;; only a wall-clock bound stops it at deploy (where instantiating runs the start function).
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1024)
  (func $forever (loop $again (drop (call $random (i32.const 0) (i32.const 67108864))) (br $again)))
  (start $forever)
  (func (export "init"))
  (func (export "ver") (result i32) (i32.const 0))
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "free") (param i32))
  (func (export "event") (param i32 i32 i32)))
