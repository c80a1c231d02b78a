;; WASI command that floods an output forever, picked by the first byte of stdin (for a JSON
;; object, the first letter of its first key: {"err":1} is 'e'): 'e' stderr
;; (1 KiB lines), 'o' stdout (1 KiB writes); anything else writes "fine" to stdout, exit 0,
;; after growing memory to 16 pages (1 MiB) when it is 'g'.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "fine")
  ;; iovec at 0 (buf, len), byte count at 16; stdin's first byte at 32; a line at 1024
  (func $write (param $fd i32) (param $buf i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $buf))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16))))
  (func (export "_start")
    (local $mode i32)
    (memory.fill (i32.const 1024) (i32.const 120) (i32.const 1023))  ;; 'x' * 1023 + '\n'
    (i32.store8 (i32.const 2047) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
    (local.set $mode (i32.load8_u (i32.const 32)))
    (if (i32.eq (local.get $mode) (i32.const 123))                     ;; {"x...
      (then (local.set $mode (i32.load8_u (i32.const 34)))))
    (if (i32.eq (local.get $mode) (i32.const 101))                     ;; 'e'
      (then (loop $flood (call $write (i32.const 2) (i32.const 1024) (i32.const 1024)) (br $flood))))
    (if (i32.eq (local.get $mode) (i32.const 111))                     ;; 'o'
      (then (loop $flood (call $write (i32.const 1) (i32.const 1024) (i32.const 1024)) (br $flood))))
    (if (i32.eq (local.get $mode) (i32.const 103))                     ;; 'g'
      (then (drop (memory.grow (i32.const 15)))))
    (call $write (i32.const 1) (i32.const 64) (i32.const 4))))
