//! rust-greet: a Jobico jobicolet in Rust, using the guest ABI "ver 1" (free(ptr, size)) of
//! Jobico's jobicolet-sdk-rust, written out in one file so it builds with a bare `rustc`
//! (no Cargo, no crates): see build.sh.
//!
//! For an event like {"firstName":"john","lastName":"connor","age":50} it logs at level 1
//! (info) and answers "Hello john connor" with code 0. The package chains that answer to the
//! `evrust_ok` event, which runs this same module: an event carrying a "result" (a chained
//! result event) is logged and answered with that result. Any other event without a first
//! name is answered with code 400 and an error log.
//!
//! The host calls, per event (examples/README.md, docs/contract.md#guest-abi):
//!   p = malloc(len); copy the event (compact JSON) to p
//!   r = malloc(16)
//!   event(r, p, len)                 -> writes {code u64, (result_ptr << 32) | result_len u64}
//!   free(result_ptr, result_len) if result_ptr != 0, then free(r, 16), free(p, len)
//! So the result must come from our own `malloc(result_len)`: the host frees it with its size.

use std::alloc::{alloc, dealloc, Layout};

// ---- the host -----------------------------------------------------------------------------

#[link(wasm_import_module = "env")]
extern "C" {
    /// log(level, ptr, len): the `len` bytes at `ptr`, UTF-8.
    #[link_name = "log"]
    fn host_log(level: u32, ptr: *const u8, len: usize);
}

const INFO: u32 = 1;
const ERROR: u32 = 3;

fn log(level: u32, message: &str) {
    unsafe { host_log(level, message.as_ptr(), message.len()) }
}

// ---- the ABI: ver, malloc, free, init, event ----------------------------------------------

/// 1: the host calls free(ptr, size), as Rust's allocator needs the size back.
#[export_name = "ver"]
pub extern "C" fn guest_ver() -> i32 {
    1
}

/// Every block has 8-byte alignment (the result struct holds u64s) and at least one byte.
fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), 8).expect("block size fits")
}

#[export_name = "malloc"]
pub extern "C" fn guest_malloc(size: usize) -> *mut u8 {
    unsafe { alloc(layout(size)) } // null when out of memory: the host reports it
}

#[export_name = "free"]
pub unsafe extern "C" fn guest_free(ptr: *mut u8, size: usize) {
    if !ptr.is_null() {
        dealloc(ptr, layout(size))
    }
}

/// Once per instance, before the first event.
#[export_name = "init"]
pub extern "C" fn guest_init() {}

/// What `event` returns: 16 bytes, passed back through a pointer the host allocates (the wasm32
/// C ABI returns a struct this size via a hidden first parameter, so the export's wasm type is
/// event(ret: i32, ptr: i32, len: i32), exactly what the host calls).
#[repr(C)]
pub struct Answer {
    code: u64,
    result: u64, // (result_ptr << 32) | result_len
}

#[export_name = "event"]
pub unsafe extern "C" fn guest_event(ptr: *const u8, len: usize) -> Answer {
    let event = std::slice::from_raw_parts(ptr, len);
    let (code, text) = greet(event);
    Answer {
        code,
        result: into_result(&text),
    }
}

/// Copies `text` into a block of its own from `malloc`, for the host to read and free.
fn into_result(text: &str) -> u64 {
    let out = guest_malloc(text.len());
    if out.is_null() {
        return 0; // result_ptr 0: an empty result, nothing for the host to free
    }
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), out, text.len()) };
    ((out as u64) << 32) | text.len() as u64
}

// ---- the jobicolet itself -----------------------------------------------------------------

fn greet(event: &[u8]) -> (u64, String) {
    let [first, last, chained] = top_level_strings(event, ["firstName", "lastName", "result"]);
    match (first, last, chained) {
        (Some(first), last, _) => {
            let mut greeting = String::from("Hello ");
            greeting.push_str(&first);
            if let Some(last) = last {
                greeting.push(' ');
                greeting.push_str(&last);
            }
            log(INFO, &["rust-greet: greeting ", &greeting[6..]].concat());
            (0, greeting)
        }
        (None, _, Some(result)) => {
            log(
                INFO,
                &["rust-greet: result of an earlier greeting: ", &result].concat(),
            );
            (0, result)
        }
        (None, _, None) => {
            log(ERROR, "rust-greet: the event has no firstName");
            (400, String::from("firstName is missing"))
        }
    }
}

// ---- a minimal JSON reader: the string values of some top-level keys ----------------------
// Enough for this example without crates; a real project would use serde_json through Cargo.

fn top_level_strings<const N: usize>(json: &[u8], keys: [&str; N]) -> [Option<String>; N] {
    const NONE: Option<String> = None;
    let mut found = [NONE; N];
    let mut r = Reader { s: json, i: 0 };
    if r.eat(b'{') {
        loop {
            let key = match r.string() {
                Some(key) => key,
                None => break,
            };
            if !r.eat(b':') {
                break;
            }
            let slot = keys.iter().position(|k| *k == key);
            r.ws();
            match slot {
                Some(n) if r.peek() == Some(b'"') => found[n] = r.string(),
                _ => {
                    if !r.skip_value() {
                        break;
                    }
                }
            }
            if !r.eat(b',') {
                break;
            }
        }
    }
    found
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.peek() == Some(c);
        self.i += hit as usize;
        hit
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// A JSON string, escapes decoded; None if there is none here or it is malformed.
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let ch = match e {
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let high = self.hex4()?;
                            let mut u = high;
                            // A surrogate pair (two \u escapes) is one character; a lone
                            // surrogate is not a character: U+FFFD stands in for it.
                            if (0xD800..0xDC00).contains(&high)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                let at = self.i;
                                self.i += 2;
                                match self.hex4()? {
                                    low @ 0xDC00..=0xDFFF => {
                                        u = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                                    }
                                    _ => self.i = at, // read the next escape on its own
                                }
                            }
                            char::from_u32(u).unwrap_or('\u{FFFD}')
                        }
                        other => other as char, // \" \\ \/
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }

    /// Skips any JSON value; false if the input ends or is malformed.
    fn skip_value(&mut self) -> bool {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().is_some(),
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                if self.eat(close) {
                    return true;
                }
                loop {
                    if open == b'{' && (self.string().is_none() || !self.eat(b':')) {
                        return false;
                    }
                    if !self.skip_value() {
                        return false;
                    }
                    if self.eat(close) {
                        return true;
                    }
                    if !self.eat(b',') {
                        return false;
                    }
                }
            }
            Some(_) => {
                // a number, true, false or null
                let start = self.i;
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.i += 1;
                }
                self.i > start
            }
            None => false,
        }
    }
}
