use super::*;

/// (requests seen, finding) after feeding `input` in pieces of `chunk` bytes.
fn scan(input: &[u8], chunk: usize) -> (u64, Option<Finding>) {
    let mut scanner = Scanner::new();
    for piece in input.chunks(chunk) {
        scanner.feed(piece);
    }
    (scanner.requests(), scanner.finding())
}

/// The finding, checked to be the same for every read split.
fn finding(input: &[u8]) -> Option<(u64, Fault)> {
    let whole = scan(input, input.len().max(1));
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(
            scan(input, chunk),
            whole,
            "split {chunk} changes the verdict on {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole.1.map(|f| (f.request, f.fault))
}

#[test]
fn follows_keep_alive_requests_with_bodies() {
    let input = b"POST /a HTTP/1.1\r\nContent-Length: 27\r\n\r\nContent-Length: 1\r\n\r\nxxxxxx\
GET /b HTTP/1.1\r\nHost: x\r\n\r\n\
POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n\n\r\n0\r\nX-T: 1\r\n\r\n\
\r\nGET /d HTTP/1.1\r\n\r\n";
    assert_eq!(finding(input), None);
    assert_eq!(scan(input, 5).0, 4);
}

#[test]
fn flags_both_lengths_and_duplicates() {
    let both = b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(finding(both), Some((2, Fault::Ambiguous)));
    let dup = b"POST /b HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc";
    assert_eq!(finding(dup), Some((1, Fault::Ambiguous)));
    let list = b"POST /b HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc";
    assert_eq!(finding(list), Some((1, Fault::Ambiguous)));
    let two_te = b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(finding(two_te), Some((1, Fault::Ambiguous)));
}

#[test]
fn flags_malformed_heads() {
    for head in [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: 0x4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"\nGET / HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(
            finding(head),
            Some((1, Fault::Malformed)),
            "{:?}",
            String::from_utf8_lossy(head)
        );
    }
}

#[test]
fn flags_malformed_chunks() {
    for body in [
        &b"FFFFFFFFFFFFFFFFFFFF\r\n"[..],
        b"zz\r\n",
        b"\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5;a\nb\r\nhello\r\n0\r\n\r\n",
        b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"0\r\nX-Trailer: a\x00\r\n\r\n",
        b"0\r\n X-Folded: a\r\n\r\n",
    ] {
        let mut input =
            b"GET /ok HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        input.extend_from_slice(body);
        assert_eq!(
            finding(&input),
            Some((2, Fault::Malformed)),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn accepts_what_hyper_and_the_rfc_agree_on() {
    let input = b"POST /a HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n\
00005 ;name=\"v\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
POST /b HTTP/1.1\r\nTransfer-Encoding:\tchunked \r\n\r\n0\r\n\r\n\
POST /c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length:  3\r\n\r\nabc\
GET /d HTTP/1.1\r\n\r\n";
    assert_eq!(finding(input), None);
    assert_eq!(scan(input, 3).0, 4);
}

#[test]
fn http2_preface_switches_off() {
    let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(scan(h2, 3), (0, None));
    // Only the whole preface counts: a near miss is an HTTP/1 head like any other.
    let near = b"PRI * HTTP/2.0\r\n\r\nXX\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert!(finding(near).is_some());
}

#[test]
fn oversized_heads_are_refused() {
    let mut input = b"GET / HTTP/1.1\r\nX: ".to_vec();
    input.resize(scan::MAX_HEAD + 10, b'a');
    assert_eq!(
        scan(&input, 4096).1.map(|f| f.fault),
        Some(Fault::Malformed)
    );
}

#[test]
fn verdict_applies_to_the_flagged_request_on() {
    let v = FramingVerdict::default();
    v.record(Finding {
        request: 2,
        fault: Fault::Malformed,
    });
    assert_eq!(v.next_fault(), None);
    assert_eq!(v.next_fault(), Some(Fault::Malformed));
    assert_eq!(v.next_fault(), Some(Fault::Malformed));
}

#[test]
fn whole_lines_are_judged_in_place() {
    let mut scanner = Scanner::new();
    scanner.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    scanner.feed(b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    scanner.feed(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    assert_eq!((scanner.requests(), scanner.finding()), (3, None));
    assert_eq!(scanner.held(), 0, "a whole line was copied");
    // Only a line split across reads is held over.
    scanner.feed(b"GET /d HT");
    assert!(scanner.held() > 0);
    scanner.feed(b"TP/1.1\r\n\r\n");
    assert_eq!((scanner.requests(), scanner.finding()), (4, None));
}
