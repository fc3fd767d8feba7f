//! The kernel's walk of HTTP/2 frames (`bpf/socket/h2_walk.h`), compiled for
//! the host and run over generated streams cut into calls at random: the
//! events it plans cover every byte once, in order; every byte it skips is
//! the payload of an unpadded DATA frame; and unless a call is too short
//! for it (the rest of a split frame header) or holds more events than it
//! plans, it never gives up and skips every DATA payload it may.

mod harness;

/// `bpf/socket/h2_walk.h`'s thresholds and modes.
const SKIP_MIN: u64 = 128;
const EVENTS_PER_CALL: usize = 24;
const H2_HEADER: u32 = 1;
const H2_DATA: u32 = 2;
const H2_LOST: u32 = 3;
const H2_PARTIAL: u32 = 4;
const MAX_PAYLOAD: u64 = 16384;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// xorshift64*: the cases, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// One direction's bytes (a client's, from the preface, or a server's, from
/// its SETTINGS) and the byte ranges the walk may skip: the payloads of
/// unpadded DATA frames of `SKIP_MIN` bytes or more.
fn stream(rng: &mut Rng, client: bool) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut out = Vec::new();
    if client {
        out.extend_from_slice(PREFACE);
    }
    frame(&mut out, 4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let mut skippable = Vec::new();
    let frames = 1 + rng.below(120);
    for _ in 0..frames {
        let stream = 1 + 2 * rng.below(50) as u32;
        let fill = b'a' + rng.below(26) as u8;
        match rng.below(10) {
            0..=4 => {
                let len = match rng.below(4) {
                    0 => rng.below(SKIP_MIN + 8),
                    1 => SKIP_MIN - 1 + rng.below(3),
                    2 => rng.below(20_000),
                    _ => 1000 + rng.below(3000),
                } as usize;
                let end = u8::from(rng.below(3) == 0);
                if rng.below(8) == 0 && len > 0 {
                    // Padded: never skipped.
                    let mut p = vec![fill; len];
                    p[0] = (len as u64 - 1).min(rng.below(40)) as u8;
                    frame(&mut out, 0, 0x8 | end, stream, &p);
                } else {
                    frame(&mut out, 0, end, stream, &vec![fill; len]);
                    if len as u64 >= SKIP_MIN {
                        let at = out.len() as u64;
                        skippable.push((at - len as u64, at));
                    }
                }
            }
            5 | 6 => {
                let len = rng.below(300) as usize;
                frame(&mut out, 1, 0x4, stream, &vec![fill; len]);
            }
            7 => frame(&mut out, 8, 0, stream, &[0, 0, 1, 0]),
            8 => frame(&mut out, 6, 0, 0, &[fill; 8]),
            _ => {
                // A large non-DATA frame (a header block of big fields).
                let len = rng.below(40_000) as usize;
                frame(&mut out, 9, 0x4, stream, &vec![fill; len]);
            }
        }
    }
    (out, skippable)
}

/// Cut `total` bytes into calls: mostly of a few KiB, some of a few bytes
/// (frame headers split across calls), some larger than one event.
fn calls(rng: &mut Rng, total: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < total {
        let len = match rng.below(8) {
            0 => 1 + rng.below(12),
            1 => 16_000 + rng.below(40_000),
            _ => 1 + rng.below(9000),
        }
        .min(total - at);
        out.push(len);
        at += len;
    }
    out
}

#[derive(Debug)]
enum Out {
    /// Planned by the walk: offset, covers, copy, skip.
    Event(u64, u64, u64, bool),
    /// Left to the per-buffer path: offset, len.
    Copied(u64, u64),
}

fn parse(out: &str) -> Vec<(Vec<Out>, u32)> {
    let mut cases = Vec::new();
    let mut events = Vec::new();
    let mut mode = 0;
    for line in out.lines() {
        let f: Vec<u64> = line
            .split(' ')
            .skip(1)
            .map(|v| v.parse().expect("number"))
            .collect();
        match line.split(' ').next() {
            Some("E") => events.push(Out::Event(f[0], f[1], f[2], f[3] == 1)),
            Some("N") => events.push(Out::Copied(f[0], f[1])),
            Some("M") => mode = f[0] as u32,
            Some("END") => cases.push((std::mem::take(&mut events), mode)),
            _ => panic!("harness line {line:?}"),
        }
    }
    cases
}

#[test]
fn the_walk_skips_data_payloads_only_and_covers_every_byte_once() {
    let exe = harness::build("h2_walk");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut input = String::new();
    let mut cases = Vec::new();
    for i in 0..300 {
        let (bytes, skippable) = stream(&mut rng, i % 2 == 0);
        let cuts = calls(&mut rng, bytes.len() as u64);
        for b in &bytes {
            input.push(char::from(HEX[usize::from(b >> 4)]));
            input.push(char::from(HEX[usize::from(b & 15)]));
        }
        for c in &cuts {
            input.push_str(&format!(" {c}"));
        }
        input.push('\n');
        cases.push((bytes, skippable, cuts));
    }
    let out = harness::run(&exe, &input);
    let results = parse(&out);
    assert_eq!(results.len(), cases.len());
    let (mut lost, mut skipped_total, mut may_total) = (0, 0, 0);
    for (i, ((bytes, skippable, cuts), (events, mode))) in cases.iter().zip(&results).enumerate() {
        // Every byte once, in order.
        let mut at = 0;
        let mut skipped = 0;
        for e in events {
            let (off, covers) = match *e {
                Out::Event(off, covers, copy, skip) => {
                    assert!(covers > 0 && copy <= covers, "case {i}: {e:?}");
                    assert!(copy <= MAX_PAYLOAD, "case {i}: one event copies: {e:?}");
                    if !skip {
                        assert_eq!(copy, covers, "case {i}: {e:?}");
                    }
                    if skip && copy < covers {
                        // The skipped bytes lie inside one skippable payload.
                        let (a, b) = (off + copy, off + covers);
                        assert!(
                            skippable.iter().any(|&(s, t)| s <= a && b <= t),
                            "case {i}: skipped {a}..{b} is not a DATA payload: {e:?}"
                        );
                        skipped += b - a;
                    }
                    (off, covers)
                }
                Out::Copied(off, len) => (off, len),
            };
            assert_eq!(
                off, at,
                "case {i}: events in order, nothing twice: {events:?}"
            );
            at += covers;
        }
        assert_eq!(at, bytes.len() as u64, "case {i}: every byte covered");
        // The calls the events fall in: none spans two.
        let mut ends = std::collections::BTreeSet::new();
        let mut end = 0;
        for c in cuts {
            end += c;
            ends.insert(end);
        }
        for e in events {
            let (off, covers) = match *e {
                Out::Event(o, c, _, _) | Out::Copied(o, c) => (o, c),
            };
            let call_end = *ends.range(off + 1..).next().expect("a call");
            assert!(
                off + covers <= call_end,
                "case {i}: {e:?} crosses a call's end"
            );
        }
        let may: u64 = skippable.iter().map(|(a, b)| b - a).sum();
        skipped_total += skipped;
        may_total += may;
        if *mode == 0 {
            // Never started: the first call is shorter than the preface or
            // the first frame header.
            let first = if i % 2 == 0 { PREFACE.len() as u64 } else { 9 };
            assert!(cuts[0] < first, "case {i}: not started: {events:?}");
            lost += 1;
        } else if *mode == H2_LOST {
            lost += 1;
            // Only where the walk cannot go on: a call shorter than the rest
            // of a header split before it, or more events than it plans.
            let tiny = cuts.iter().any(|&c| c < 9);
            let crowded = cuts
                .iter()
                .any(|&c| c as usize >= EVENTS_PER_CALL * (SKIP_MIN as usize + 9));
            assert!(
                tiny || crowded,
                "case {i}: walk given up without cause: {events:?}"
            );
        } else {
            assert!(
                [H2_HEADER, H2_DATA, H2_PARTIAL].contains(mode),
                "case {i}: mode {mode}"
            );
            assert_eq!(skipped, may, "case {i}: every skippable payload skipped");
        }
    }
    eprintln!(
        "{} cases, {lost} given up; {skipped_total} of {may_total} skippable bytes skipped",
        cases.len()
    );
    assert!(lost * 4 < cases.len(), "the walk gave up in {lost} cases");
    assert!(skipped_total * 10 > may_total * 7);
}

#[test]
fn the_walk_starts_only_at_a_preface_or_a_first_settings_frame() {
    let exe = harness::build("h2_walk");
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut data = Vec::new();
    frame(&mut data, 0, 0, 1, &[b'x'; 500]);
    let mut settings_ack = Vec::new();
    frame(&mut settings_ack, 4, 1, 0, &[]);
    let mut odd_settings = Vec::new();
    frame(&mut odd_settings, 4, 0, 0, &[0; 5]);
    let cases = [
        (hex(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false),
        (hex(&data), false),
        (hex(&settings_ack), false),
        (hex(&odd_settings), false),
        (hex(&PREFACE[..20]), false),
        (hex(PREFACE), true),
    ];
    let input: String = cases
        .iter()
        .map(|(h, _)| format!("{h} {}\n", h.len() / 2))
        .collect();
    let results = parse(&harness::run(&exe, &input));
    for ((h, walks), (events, mode)) in cases.iter().zip(&results) {
        let walked = events.iter().all(|e| matches!(e, Out::Event(..)));
        assert_eq!(walked, *walks, "{h}: {events:?}");
        assert_eq!(*mode != 0, *walks, "{h}: mode {mode}");
    }
}
