;; Jobicolet, ver 0, that keeps the CPU busy (a loop of 8 million turns, about 5 ms here) before it
;; answers the event back, code 0: a slow guest for the fair-sharing benchmark.
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (global $live (mut i32) (i32.const 0))

  (func (export "init"))

  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    ;; 8-byte header holding the size, block 8-aligned
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 15)) (i32.const -8)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have))
                                                     (i32.const 65535)) (i32.const 16)))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.store (i32.sub (local.get $p) (i32.const 8)) (local.get $n))
    (global.set $bump (local.get $end))
    (global.set $live (i32.add (global.get $live) (i32.const 1)))
    (local.get $p))

  (func (export "free") (param $p i32)
    (if (i32.lt_u (local.get $p) (i32.const 4096)) (then (return)))
    (global.set $live (i32.sub (global.get $live) (i32.const 1)))
    (if (i32.eqz (global.get $live)) (then (global.set $bump (i32.const 4096)))))

  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $q i32) (local $turns i32)
    (local.set $turns (i32.const 8000000))
    (loop $spin
      (local.set $turns (i32.sub (local.get $turns) (i32.const 1)))
      (br_if $spin (local.get $turns)))
    (call $log (i32.const 6) (local.get $p) (local.get $len))
    (local.set $q (call $malloc (local.get $len)))
    (memory.copy (local.get $q) (local.get $p) (local.get $len))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (i64.or (i64.shl (i64.extend_i32_u (local.get $q)) (i64.const 32))
              (i64.extend_i32_u (local.get $len))))))
