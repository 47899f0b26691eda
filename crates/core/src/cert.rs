//! Reading a server certificate: the end of its validity (X.509 `notAfter`) from PEM text, for
//! `storage.ssl_status()`. A bounded DER walk (tags and lengths only, no recursion), so a file
//! that is not a certificate is an error, never a crash.

/// Seconds since 1970-01-01 UTC at which the first certificate in `pem` stops being valid.
pub fn not_after(pem: &str) -> Result<i64, String> {
    let der = pem_body(pem)?;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serialNumber,
    //   signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... } ... }
    let (_, cert) = tlv(&der, 0x30)?;
    let (_, tbs) = tlv(cert, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = skip(rest)?;
    }
    for _ in 0..3 {
        rest = skip(rest)?; // serialNumber, signature, issuer
    }
    let (_, validity) = tlv(rest, 0x30)?;
    let after = skip(validity)?;
    time(after)
}

fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = pem
        .find(begin)
        .ok_or("no -----BEGIN CERTIFICATE----- line")?
        + begin.len();
    let end = pem[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or("no -----END CERTIFICATE----- line")?;
    base64(&pem[start..start + end])
}

pub(crate) fn base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return Err(format!("byte {c:#04x} is not base64")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// The header length and content of the element at the start of `der`, whose tag must be `tag`.
fn tlv(der: &[u8], tag: u8) -> Result<(usize, &[u8]), String> {
    let (header, len) = header(der)?;
    if der[0] != tag {
        return Err(format!("expected tag {tag:#04x}, found {:#04x}", der[0]));
    }
    Ok((header, &der[header..header + len]))
}

/// The header length and content length of the element at the start of `der`.
fn header(der: &[u8]) -> Result<(usize, usize), String> {
    let short = || "the certificate ends early".to_string();
    let first = *der.get(1).ok_or_else(short)?;
    let (header, len) = if first & 0x80 == 0 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return Err("a length the certificate format does not use".into());
        }
        let bytes = der.get(2..2 + n).ok_or_else(short)?;
        (
            2 + n,
            bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
        )
    };
    if der.len() < header + len {
        return Err(short());
    }
    Ok((header, len))
}

/// What follows the element at the start of `der`.
fn skip(der: &[u8]) -> Result<&[u8], String> {
    let (header, len) = header(der)?;
    Ok(&der[header + len..])
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time(der: &[u8]) -> Result<i64, String> {
    let tag = *der.first().ok_or("no notAfter")?;
    let (_, body) = tlv(der, tag)?;
    let text = std::str::from_utf8(body)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or("notAfter is not text")?;
    let digits = |s: &str| -> Result<i64, String> {
        s.parse::<i64>()
            .map_err(|_| format!("notAfter {text:?} is not a time"))
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(&text[0..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 15) => (digits(&text[0..4])?, &text[4..]),
        _ => return Err(format!("notAfter {text:?} is not a UTC time")),
    };
    if !rest.ends_with('Z') {
        return Err(format!("notAfter {text:?} is not in UTC"));
    }
    let f = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, h, m, s) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(format!("notAfter {text:?} is not a valid time"));
    }
    // days from civil (Howard Hinnant's algorithm)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBWTCCAQCgAwIBAgIBATAKBggqhkjOPQQDAjAMMQowCAYDVQQDDAF4MB4XDTI2\nMTEyOTEyMTYwMVoXDTM2MTEyNjEyMTYwMVowDDEKMAgGA1UEAwwBeDBZMBMGByqG\nSM49AgEGCCqGSM49AwEHA0IABJcaMZjr1vcc7IzAzYyGwKS1ec94VnyAkqhs5qgO\n5+s+JFx3AR90Nx+Ta2reIzbadIM2zyUQ5t04YXDLWWDjFOijUzBRMB0GA1UdDgQW\nBBSYNGCdmrdO848yv4V36GIi8NjrdzAfBgNVHSMEGDAWgBSYNGCdmrdO848yv4V3\n6GIi8NjrdzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFgZ+aek\njCkrDx4ojSd3xrW/a0pFeCi8RRZLuwcIml/zAiAIkwIcOvHE+4CROmFDGeeRCbG1\n8PiBFnzuDyobkaSM8w==\n-----END CERTIFICATE-----";

    #[test]
    fn reads_not_after() {
        // made with: openssl req -x509 -newkey ec ... -days 3650 (notAfter=Nov 26 12:16:01 2036 GMT)
        assert_eq!(not_after(PEM), Ok(2_111_314_561));
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert!(not_after("hello").is_err());
        assert!(not_after("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").is_err());
        assert!(not_after("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----").is_err());
        let truncated = &PEM[..200];
        assert!(not_after(&format!("{truncated}\n-----END CERTIFICATE-----")).is_err());
    }
}
