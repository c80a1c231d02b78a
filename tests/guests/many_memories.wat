;; A jobicolet with eight memories: it grows each of the seven besides `memory` by the page
;; count the event's first byte gives ('0' + pages), and answers "grown" if every one grew.
;; Store limits hold per memory, so without a limit on their number each could take the
;; whole memory limit.
(module
  (memory (export "memory") 1)
  (memory $m1 0) (memory $m2 0) (memory $m3 0) (memory $m4 0)
  (memory $m5 0) (memory $m6 0) (memory $m7 0)
  (data (i32.const 100) "grownshort")
  (func (export "init"))
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "free") (param i32))
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $pages i32) (local $failed i32)
    (local.set $pages (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
    (local.set $failed (i32.or (i32.or (i32.or
      (i32.eq (memory.grow $m1 (local.get $pages)) (i32.const -1))
      (i32.eq (memory.grow $m2 (local.get $pages)) (i32.const -1)))
      (i32.or (i32.eq (memory.grow $m3 (local.get $pages)) (i32.const -1))
              (i32.eq (memory.grow $m4 (local.get $pages)) (i32.const -1))))
      (i32.or (i32.or (i32.eq (memory.grow $m5 (local.get $pages)) (i32.const -1))
                      (i32.eq (memory.grow $m6 (local.get $pages)) (i32.const -1)))
              (i32.eq (memory.grow $m7 (local.get $pages)) (i32.const -1)))))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (select (i64.const 0x0000006900000005) (i64.const 0x0000006400000005) (local.get $failed)))))
