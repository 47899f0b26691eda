//! The smallest HTTP/1.x server side the metrics endpoint needs: read a request head within a
//! byte limit, route `GET` on a path, write a complete response with `Connection: close`.

/// Largest request head read (request line and headers); past it the client gets 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// What a request head said.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The head is not complete yet: read more.
    Incomplete,
    /// A complete request line: method, path and query string (without its `?`; fragment
    /// removed).
    Request {
        method: String,
        path: String,
        query: String,
        /// The value of the `Authorization` header, if one was sent (the last one).
        authorization: Option<String>,
    },
    /// Not HTTP, or over the limit: the status to answer with.
    Bad(u16),
}

/// Empty lines accepted before the request line (RFC 9112 §2.2 asks for at least one).
pub const MAX_LEADING_EMPTY_LINES: usize = 4;

/// Whether the bytes received since `old_len` can change what [`parse_head`] says: an empty
/// line (the end of the head), a bare CR, a control byte in the request line, or a buffer at
/// the size limit. Looks only at the new bytes (and two before them), so a head sent a byte at
/// a time costs linear time, not a re-parse per byte.
pub fn worth_parsing(buf: &[u8], old_len: usize) -> bool {
    if buf.len() >= MAX_HEAD {
        return true;
    }
    let new = &buf[old_len.min(buf.len()).saturating_sub(2)..];
    let end = new.windows(2).any(|w| w == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n");
    let bare_cr = new.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n');
    let control = new
        .iter()
        .any(|&b| (b < 0x20 && b != b'\r' && b != b'\n' && b != b'\t') || b == 0x7f);
    end || bare_cr || (control && !buf.contains(&b'\n'))
}

/// The path and query of a request target: origin form (`/metrics?x`) or absolute form
/// (`http://host:9187/metrics`, RFC 9112 §3.2.2), the fragment removed; `*` (asterisk form) as
/// is; None for anything else.
fn target_path(target: &str) -> Option<(String, String)> {
    let rest = if target.starts_with('/') || target == "*" {
        target
    } else {
        let (scheme, after) = target.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return None;
        }
        // the authority ends at the first '/', '?' or '#'
        let at = after.find(['/', '?', '#']).unwrap_or(after.len());
        if at == 0 {
            return None;
        }
        // an empty path (`http://h?x`) is `/` (RFC 9110 §4.2.3): the path is empty below
        &after[at..]
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    Some((
        if path.is_empty() { "/" } else { path }.to_owned(),
        query.to_owned(),
    ))
}

/// Reads a request head from the bytes received so far. Lines end with CRLF or a bare LF
/// (RFC 9112 §2.2 lets a recipient accept LF); a CR anywhere else (a bare CR) is 400 at once,
/// as is a header line without a field name and colon or an obsolete line folding. Empty
/// lines before the request line are skipped.
pub fn parse_head(buf: &[u8]) -> Head {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut end = None;
    let mut leading = 0;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        let mut line = &buf[start..start + nl];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.contains(&b'\r') {
            return Head::Bad(400);
        }
        start += nl + 1;
        if line.is_empty() {
            if lines.is_empty() {
                leading += 1;
                if leading > MAX_LEADING_EMPTY_LINES {
                    return Head::Bad(400);
                }
                continue;
            }
            end = Some(start);
            break;
        }
        lines.push(line);
    }
    let Some(end) = end else {
        // a CR that is not the last byte received is not followed by LF
        let tail = &buf[start..];
        if tail.iter().rev().skip(1).any(|&b| b == b'\r') {
            return Head::Bad(400);
        }
        // a request line being received with a control byte in it is not HTTP (a TLS
        // handshake, binary noise): no need to wait for its end
        if lines.is_empty()
            && tail
                .iter()
                .any(|&b| (b < 0x20 && b != b'\r' && b != b'\t') || b == 0x7f)
        {
            return Head::Bad(400);
        }
        return if buf.len() >= MAX_HEAD {
            Head::Bad(431)
        } else {
            Head::Incomplete
        };
    };
    if end > MAX_HEAD {
        return Head::Bad(431);
    }
    let Ok(line) = std::str::from_utf8(lines[0]) else {
        return Head::Bad(400);
    };
    let mut authorization = None;
    for h in &lines[1..] {
        let colon = h.iter().position(|&b| b == b':');
        if let Some(c) = colon {
            if h[..c].eq_ignore_ascii_case(b"authorization") {
                authorization = std::str::from_utf8(&h[c + 1..])
                    .ok()
                    .map(|v| v.trim().to_owned());
            }
        }
        let bad_name = match colon {
            None | Some(0) => true,
            Some(c) => h[..c]
                .iter()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()),
        };
        if bad_name {
            return Head::Bad(400);
        }
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Bad(400);
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !token(method) {
        return Head::Bad(400);
    }
    if target.bytes().any(|b| b.is_ascii_control() || b >= 0x7f) {
        return Head::Bad(400);
    }
    let Some((path, query)) = target_path(target) else {
        return Head::Bad(400);
    };
    Head::Request {
        method: method.to_owned(),
        path,
        query,
        authorization,
    }
}

/// The reason phrase of the statuses the endpoint uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// How a request wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The whole answer.
    Get,
    /// The head of the answer GET would get (its length included), no body.
    Head,
    /// The status and what the resource allows (`Allow`), no body, a length of 0.
    Options,
}

impl Method {
    /// The methods the endpoint answers; None for any other (405).
    pub fn parse(m: &str) -> Option<Method> {
        match m {
            "GET" => Some(Method::Get),
            "HEAD" => Some(Method::Head),
            "OPTIONS" => Some(Method::Options),
            _ => None,
        }
    }
}

/// A complete response: status line, length, type, `Connection: close`, then the body (none
/// for HEAD and OPTIONS; OPTIONS and 405 say what is allowed).
pub fn response(status: u16, content_type: &str, body: &[u8], method: Method) -> Vec<u8> {
    let length = if method == Method::Options {
        0
    } else {
        body.len()
    };
    let allow = status == 405 || method == Method::Options;
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\nCache-Control: no-store\r\n{}{}\r\n",
        reason(status),
        if allow { "Allow: GET, HEAD, OPTIONS\r\n" } else { "" },
        if status == 401 {
            "WWW-Authenticate: Basic realm=\"pg_storage_ext\", charset=\"UTF-8\"\r\n"
        } else {
            ""
        }
    )
    .into_bytes();
    if method == Method::Get {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(m: &str, p: &str) -> Head {
        let (path, query) = p.split_once('?').unwrap_or((p, ""));
        Head::Request {
            method: m.into(),
            path: path.into(),
            query: query.into(),
            authorization: None,
        }
    }

    #[test]
    fn heads() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            req("GET", "/metrics")
        );
        assert_eq!(parse_head(b"GET /?x=1 HTTP/1.0\n\n"), req("GET", "/?x=1"));
        assert_eq!(
            parse_head(b"GET /replica?lag=10MB#f HTTP/1.1\r\n\r\n"),
            req("GET", "/replica?lag=10MB")
        );
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost"),
            Head::Incomplete
        );
        assert_eq!(parse_head(b""), Head::Incomplete);
        assert_eq!(parse_head(b"hello\r\n\r\n"), Head::Bad(400));
        assert_eq!(parse_head(b"GET metrics HTTP/1.1\r\n\r\n"), Head::Bad(400));
        assert_eq!(parse_head(b"GET / SMTP\r\n\r\n"), Head::Bad(400));
        assert_eq!(
            parse_head(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']),
            Head::Bad(400)
        );
        let big = vec![b'a'; MAX_HEAD];
        assert_eq!(parse_head(&big), Head::Bad(431));
    }

    /// Issue 35 L5: the absolute form of the request target is accepted (RFC 9112 §3.2.2).
    #[test]
    fn absolute_form_targets() {
        assert_eq!(
            parse_head(
                b"GET http://127.0.0.1:9187/metrics HTTP/1.1\r\nHost: 127.0.0.1:9187\r\n\r\n"
            ),
            req("GET", "/metrics")
        );
        assert_eq!(
            parse_head(b"GET HTTP://example.com/?since=1h#x HTTP/1.1\r\n\r\n"),
            req("GET", "/?since=1h")
        );
        assert_eq!(
            parse_head(b"HEAD https://h HTTP/1.0\r\n\r\n"),
            req("HEAD", "/")
        );
        assert_eq!(
            parse_head(b"GET http://h?x=1 HTTP/1.1\r\n\r\n"),
            req("GET", "/?x=1")
        );
        assert_eq!(
            parse_head(b"OPTIONS * HTTP/1.1\r\n\r\n"),
            req("OPTIONS", "*")
        );
        // not a target this server knows how to read
        assert_eq!(
            parse_head(b"GET ftp://h/metrics HTTP/1.1\r\n\r\n"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"GET http:///metrics HTTP/1.1\r\n\r\n"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"CONNECT h:443 HTTP/1.1\r\n\r\n"),
            Head::Bad(400)
        );
    }

    /// Issue 35 L5: a bare CR is an error at once (never a wait for the time limit); bare LF
    /// line ends are accepted (RFC 9112 §2.2), mixed with CRLF too.
    #[test]
    fn line_ends() {
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\r"), Head::Bad(400));
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\r"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\rHost: x"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"GET /metrics\rX HTTP/1.1\r\n\r\n"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\nHost: x\n\n"),
            req("GET", "/metrics")
        );
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\n\r\n"),
            req("GET", "/metrics")
        );
        // a CR last in what was received may be followed by its LF
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r"), Head::Incomplete);
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\n\r"), Head::Incomplete);
        // empty lines before the request line are skipped
        assert_eq!(parse_head(b"\r\n\nGET / HTTP/1.1\r\n\r\n"), req("GET", "/"));
        assert_eq!(parse_head(b"\r\n\r\n"), Head::Incomplete);
        assert_eq!(parse_head(b"\r\n\r\n\r\n\r\n\r\n"), Head::Bad(400));
    }

    #[test]
    fn header_lines() {
        // obsolete line folding, no colon, whitespace before the colon: 400 (RFC 9112 §5)
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"),
            Head::Bad(400)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
            Head::Bad(400)
        );
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\n: x\r\n\r\n"), Head::Bad(400));
        // values are opaque (not even UTF-8 needed)
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n"),
            req("GET", "/")
        );
        // the request line: one space between three parts, a token method, HTTP/1.0 or 1.1
        assert_eq!(parse_head(b"GET  / HTTP/1.1\r\n\r\n"), Head::Bad(400));
        assert_eq!(parse_head(b"G(T / HTTP/1.1\r\n\r\n"), Head::Bad(400));
        assert_eq!(parse_head(b"GET / HTTP/1.10\r\n\r\n"), Head::Bad(400));
        assert_eq!(parse_head(b"GET /\x01 HTTP/1.1\r\n\r\n"), Head::Bad(400));
        // the limit counts the whole head
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(vec![b'a'; MAX_HEAD]);
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&big), Head::Bad(431));
        // not HTTP at all: 400 before any line end (a TLS ClientHello here)
        assert_eq!(parse_head(b"\x16\x03\x01\x02\x00\x01"), Head::Bad(400));
        assert_eq!(parse_head(b"GET /\x00"), Head::Bad(400));
        assert_eq!(parse_head(b"GET /\t"), Head::Incomplete);
        assert!(worth_parsing(b"\x16\x03", 0));
        assert!(worth_parsing(b"GET / HTTP/1.1\r\n\r\n", 17));
        assert!(worth_parsing(b"GET / HTTP/1.1\n\n", 16));
        assert!(worth_parsing(b"GET / HTTP/1.1\r\r", 16));
        assert!(!worth_parsing(b"GET / HTTP/1.1\r\nHost: x\r\n", 20));
        assert!(!worth_parsing(b"GET / HTTP/1.1\r", 15));
        assert!(!worth_parsing(b"GET / HTTP/1.1\r\nX: \x01", 20));
        assert!(worth_parsing(&vec![b'a'; MAX_HEAD], MAX_HEAD - 1));
        // a flood of empty lines is refused, not re-read for ever
        assert_eq!(
            parse_head(b"\r\n\n\r\n\nGET / HTTP/1.1\r\n\r\n"),
            req("GET", "/")
        );
        assert_eq!(parse_head(b"\n\n\n\n\n"), Head::Bad(400));
    }

    #[test]
    fn authorization_header() {
        match parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization:  Basic abc= \r\n\r\n")
        {
            Head::Request { authorization, .. } => {
                assert_eq!(authorization.as_deref(), Some("Basic abc="))
            }
            h => panic!("{h:?}"),
        }
        let r = String::from_utf8(response(401, "text/plain", b"no", Method::Get)).unwrap();
        assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(r.contains("WWW-Authenticate: Basic realm=\"pg_storage_ext\""));
    }

    #[test]
    fn responses() {
        let r = String::from_utf8(response(200, "text/plain", b"hi", Method::Get)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 2\r\n"));
        assert!(r.ends_with("\r\n\r\nhi"));
        let r = String::from_utf8(response(405, "text/plain", b"no", Method::Head)).unwrap();
        assert!(r.contains("Allow: GET, HEAD, OPTIONS\r\n"));
        assert!(r.contains("Content-Length: 2\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
        let r =
            String::from_utf8(response(503, "application/json", b"{}", Method::Options)).unwrap();
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(r.contains("Allow: GET, HEAD, OPTIONS\r\n"));
        assert!(r.contains("Content-Length: 0\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
        assert_eq!(Method::parse("OPTIONS"), Some(Method::Options));
        assert_eq!(Method::parse("get"), None);
    }
}
