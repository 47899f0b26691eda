//! The smallest HTTP/1.x server side the metrics endpoint needs: read a request head within a
//! byte limit, route `GET` on a path, write a complete response with `Connection: close`.

/// Largest request head read (request line and headers); past it the client gets 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// What a request head said.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The head is not complete yet: read more.
    Incomplete,
    /// A complete request line: method and path (query string removed).
    Request { method: String, path: String },
    /// Not HTTP, or over the limit: the status to answer with.
    Bad(u16),
}

/// Reads a request head from the bytes received so far.
pub fn parse_head(buf: &[u8]) -> Head {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| {
        // tolerate bare LF line ends
        buf.windows(2).position(|w| w == b"\n\n")
    });
    let Some(end) = end else {
        return if buf.len() >= MAX_HEAD {
            Head::Bad(431)
        } else {
            Head::Incomplete
        };
    };
    if end > MAX_HEAD {
        return Head::Bad(431);
    }
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Head::Bad(400);
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Bad(400);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Head::Bad(400);
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    Head::Request {
        method: method.to_owned(),
        path,
    }
}

/// The reason phrase of the statuses the endpoint uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete response: status line, length, type, `Connection: close`, then the body.
pub fn response(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n{}\r\n",
        reason(status),
        body.len(),
        if status == 405 { "Allow: GET, HEAD\r\n" } else { "" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(m: &str, p: &str) -> Head {
        Head::Request {
            method: m.into(),
            path: p.into(),
        }
    }

    #[test]
    fn heads() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            req("GET", "/metrics")
        );
        assert_eq!(parse_head(b"GET /?x=1 HTTP/1.0\n\n"), req("GET", "/"));
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

    #[test]
    fn responses() {
        let r = String::from_utf8(response(200, "text/plain", b"hi", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 2\r\n"));
        assert!(r.ends_with("\r\n\r\nhi"));
        let r = String::from_utf8(response(405, "text/plain", b"no", true)).unwrap();
        assert!(r.contains("Allow: GET, HEAD\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
    }
}
