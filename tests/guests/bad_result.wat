;; Jobicolet returning a broken result chosen by the event's first byte:
;; 'o' pointer outside memory, 'u' invalid UTF-8, 'b' 2048 bytes (too large under result_kb=1),
;; 'n' 5 bytes at the null pointer;
;; anything else: code 0, result "fine".
(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "init"))
  ;; bump allocator that never reuses: enough for the few events a test sends
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "free") (param i32))
  (data (i32.const 16) "fine")
  (data (i32.const 32) "\ff\fe")
  (func $enc (param $ptr i64) (param $len i64) (result i64)
    (i64.or (i64.shl (local.get $ptr) (i64.const 32)) (local.get $len)))
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $first i32)
    (local.set $first (i32.load8_u (local.get $p)))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (if (result i64) (i32.eq (local.get $first) (i32.const 111)) ;; 'o'
        (then (call $enc (i64.const 0xFFFF0000) (i64.const 100)))
        (else (if (result i64) (i32.eq (local.get $first) (i32.const 117)) ;; 'u'
          (then (call $enc (i64.const 32) (i64.const 2)))
          (else (if (result i64) (i32.eq (local.get $first) (i32.const 98)) ;; 'b'
            (then (call $enc (i64.const 8192) (i64.const 2048)))
            (else (if (result i64) (i32.eq (local.get $first) (i32.const 110)) ;; 'n'
              (then (call $enc (i64.const 0) (i64.const 5)))
              (else (call $enc (i64.const 16) (i64.const 4)))))))))))))
