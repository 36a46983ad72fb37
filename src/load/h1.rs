//! A minimal HTTP/1.1 client for one user's keep-alive connection, as wrk does it: the request
//! goes out as bytes serialised once, the response is parsed with `httparse` straight from the
//! connection's own buffer in the user's task (no connection task, no channel, no header map
//! for headers nobody reads), and its body streams into the [`BodySink`] chunk by chunk.
//!
//! Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; chunked when the last
//! transfer coding is chunked (extensions and trailers skipped); else `Content-Length`; else to
//! the end of the connection. Interim 1xx responses (other than 101) are skipped. A response
//! that ends the connection (`Connection: close`, HTTP/1.0 without keep-alive, a
//! close-delimited body, bytes past the response) is read to its end and the connection is not
//! reused; nor is one whose exchange did not finish (a timeout, a body over `max-body`).

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::transport::{BodySink, Failure};

/// The largest response head read (hyper's default is about as large).
const MAX_HEAD: usize = 64 * 1024;
/// The most response headers read.
const MAX_HEADERS: usize = 100;
/// The read buffer's size; a larger head grows it up to [`MAX_HEAD`].
const BUFFER: usize = 16 * 1024;

/// Which response headers the exchange keeps: all of them (something inspects them), or only
/// those the engine itself reads (server timings, cookies, a redirect's location).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    All,
    Engine,
}

/// What a response header is to this client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    ContentLength,
    TransferEncoding,
    Connection,
    /// One the engine itself reads (server timings, cookies, a redirect's location).
    Engine,
    Other,
}

/// A header's role by its name (by length first: most names are ruled out without a
/// comparison).
fn role(name: &str) -> Role {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    match name.len() {
        14 if is("content-length") => Role::ContentLength,
        17 if is("transfer-encoding") => Role::TransferEncoding,
        10 if is("connection") => Role::Connection,
        10 if is("set-cookie") => Role::Engine,
        13 if is("server-timing") || is("x-timing-info") => Role::Engine,
        8 if is("location") => Role::Engine,
        _ => Role::Other,
    }
}

/// A response's head, as the exchange hands it back.
#[derive(Debug)]
pub(super) struct Head {
    pub status: u16,
    pub headers: HeaderMap,
    /// When the head had arrived, from the send time.
    pub at: Duration,
    /// When the body had ended.
    pub end: Duration,
}

/// How an exchange on a connection failed.
#[derive(Debug)]
pub(super) enum Broken {
    /// The connection closed (or reset) before any byte of a response: on a kept-alive
    /// connection the server closed it meanwhile, and the request may go again on a new one.
    Early(Failure),
    /// Anything else: the request fails.
    Failed(Failure),
}

/// One HTTP/1.1 connection and its read buffer.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// An exchange began and has not finished: what is on the wire is unknown.
    busy: bool,
    /// The last response allows another request on this connection.
    reusable: bool,
}

impl Conn {
    /// Opens a connection (no delay: a request goes out as soon as it is written).
    pub(super) async fn open(host: &str, port: u16) -> Result<Self, Failure> {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| Failure::new("connect", e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            busy: false,
            reusable: true,
        })
    }

    /// Whether another request may go over this connection.
    pub(super) fn idle(&self) -> bool {
        !self.busy && self.reusable
    }

    /// Sends `request` (its whole bytes) and reads the response; the body goes to `sink`.
    /// `head_only`: the request was HEAD (its response has no body whatever it says).
    pub(super) async fn round_trip(
        &mut self,
        request: &[u8],
        head_only: bool,
        keep: Keep,
        sent: Instant,
        sink: &mut impl BodySink,
    ) -> Result<Head, Broken> {
        self.busy = true;
        self.start = 0;
        self.end = 0;
        if let Err(e) = self.stream.write_all(request).await {
            return Err(Broken::Early(Failure::new("request", e.to_string())));
        }
        let mut at = Duration::ZERO;
        let mut received = false;
        let (parsed, framing) = loop {
            match parse_head(&self.buf[self.start..self.end], keep, head_only)? {
                Some((parsed, used)) => {
                    self.start += used;
                    // An interim response (100 Continue, 103 Early Hints): the answer follows.
                    if (100..200).contains(&parsed.status) && parsed.status != 101 {
                        continue;
                    }
                    if parsed.status == 101 {
                        return Err(failed(
                            "request",
                            "the server switched protocols (101), which a load test does not follow",
                        ));
                    }
                    let framing = parsed.framing;
                    break (parsed, framing);
                }
                None if self.end - self.start >= MAX_HEAD => {
                    return Err(failed("body", "the response head is larger than 64 KiB"));
                }
                None => {
                    let read = self.fill().await;
                    at = sent.elapsed();
                    match read {
                        Ok(n) if n > 0 => received = true,
                        // Nothing of a response yet: the server closed (or reset) the
                        // connection before reading this request.
                        Ok(_) if !received => {
                            return Err(Broken::Early(Failure::new(
                                "request",
                                "the connection closed before a response".to_owned(),
                            )));
                        }
                        Err(e) if !received => {
                            return Err(Broken::Early(Failure::new("request", e.to_string())));
                        }
                        Ok(_) => {
                            return Err(failed(
                                "body",
                                "the connection closed inside the response head",
                            ));
                        }
                        Err(e) => return Err(failed_owned("body", e.to_string())),
                    }
                }
            }
        };
        let failure_at = |mut f: Failure| {
            f.lt = Some(at);
            Broken::Failed(f)
        };
        let mut end = at;
        match framing {
            Framing::Empty => {}
            Framing::Length(mut left) => {
                while left > 0 {
                    if self.start == self.end {
                        end = self.more(sent, at).await?;
                    }
                    let take =
                        (self.end - self.start).min(usize::try_from(left).unwrap_or(usize::MAX));
                    sink.chunk(&self.buf[self.start..self.start + take], end)
                        .map_err(failure_at)?;
                    self.start += take;
                    left -= take as u64;
                }
            }
            Framing::Chunked => end = self.chunked(sent, at, sink).await?,
            Framing::Close => loop {
                if self.start < self.end {
                    sink.chunk(&self.buf[self.start..self.end], end)
                        .map_err(failure_at)?;
                    self.start = self.end;
                }
                match self.fill().await {
                    Ok(0) => break,
                    Ok(_) => end = sent.elapsed(),
                    read @ Err(_) => return Err(cut_short(read, at)),
                }
            },
        }
        // Bytes past the response are nothing this client asked for: the connection ends.
        self.reusable = parsed.keep_alive && framing != Framing::Close && self.start == self.end;
        self.busy = false;
        Ok(Head {
            status: parsed.status,
            headers: parsed.headers,
            at,
            end,
        })
    }

    /// Reads a chunked body into the sink; returns when its last chunk (and trailers) had
    /// arrived.
    async fn chunked(
        &mut self,
        sent: Instant,
        at: Duration,
        sink: &mut impl BodySink,
    ) -> Result<Duration, Broken> {
        let mut end = at;
        let failure_at = |mut f: Failure| {
            f.lt = Some(at);
            Broken::Failed(f)
        };
        loop {
            // The chunk's size line.
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.start += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => {
                        end = self.more(sent, at).await?;
                    }
                    Err(_) => return Err(failure_at(invalid("an invalid chunk size"))),
                }
            };
            if size == 0 {
                // Trailers (usually none), up to the blank line.
                loop {
                    let mut trailers = [httparse::EMPTY_HEADER; 16];
                    match httparse::parse_headers(&self.buf[self.start..self.end], &mut trailers) {
                        Ok(httparse::Status::Complete((used, _))) => {
                            self.start += used;
                            return Ok(end);
                        }
                        Ok(httparse::Status::Partial) => end = self.more(sent, at).await?,
                        Err(_) => return Err(failure_at(invalid("invalid trailers"))),
                    }
                }
            }
            let mut left = size;
            while left > 0 {
                if self.start == self.end {
                    end = self.more(sent, at).await?;
                }
                let take = (self.end - self.start).min(usize::try_from(left).unwrap_or(usize::MAX));
                sink.chunk(&self.buf[self.start..self.start + take], end)
                    .map_err(failure_at)?;
                self.start += take;
                left -= take as u64;
            }
            while self.end - self.start < 2 {
                end = self.more(sent, at).await?;
            }
            if &self.buf[self.start..self.start + 2] != b"\r\n" {
                return Err(failure_at(invalid("a chunk not followed by CRLF")));
            }
            self.start += 2;
        }
    }

    /// Reads more of a body that must go on; the time it arrived.
    async fn more(&mut self, sent: Instant, at: Duration) -> Result<Duration, Broken> {
        match self.fill().await {
            Ok(n) if n > 0 => Ok(sent.elapsed()),
            read => Err(cut_short(read, at)),
        }
    }

    /// Reads what the socket has after the unread bytes (moved to the front first, the
    /// buffer grown only for a head larger than it); 0 at the end of the connection.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let larger = (self.buf.len() * 2).min(MAX_HEAD + BUFFER);
                self.buf.resize(larger, 0);
            }
        }
        if self.end == self.buf.len() {
            // A chunk-size line or trailers that fill the largest buffer (a head that large
            // was refused before).
            return Err(std::io::Error::other(
                "a line of the response is longer than the read buffer (80 KiB)",
            ));
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// A read inside a body that failed or met the end of the connection.
fn cut_short(read: std::io::Result<usize>, at: Duration) -> Broken {
    let mut f = match read {
        Err(e) => Failure::new("body", e.to_string()),
        Ok(_) => incomplete(),
    };
    f.lt = Some(at);
    Broken::Failed(f)
}

fn failed(kind: &'static str, message: &str) -> Broken {
    failed_owned(kind, message.to_owned())
}

fn failed_owned(kind: &'static str, message: String) -> Broken {
    Broken::Failed(Failure::new(kind, message))
}

fn incomplete() -> Failure {
    Failure::new(
        "body",
        "the connection closed before the response was complete".to_owned(),
    )
}

fn invalid(what: &str) -> Failure {
    Failure::new("body", format!("the response has {what}"))
}

/// How a response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    Close,
}

/// A parsed response head.
#[derive(Debug)]
struct Parsed {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

/// Parses a response head from `buf`: `None` until it is complete; with the bytes it used.
fn parse_head(buf: &[u8], keep: Keep, head_only: bool) -> Result<Option<(Parsed, usize)>, Broken> {
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let used = match parsed {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(failed("body", "the response has more than 100 headers"));
        }
        Err(e) => {
            return Err(failed_owned(
                "body",
                format!("an invalid response head: {e}"),
            ));
        }
    };
    let status = response.code.unwrap_or_default();
    let http10 = response.version == Some(0);
    let mut headers = HeaderMap::new();
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = http10;
    for header in response.headers.iter() {
        let name = header.name;
        let role = role(name);
        if role == Role::ContentLength {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            match (value, length) {
                (Some(v), None) => length = Some(v),
                (Some(v), Some(l)) if v == l => {}
                _ => return Err(failed("body", "the response has an invalid Content-Length")),
            }
        } else if role == Role::TransferEncoding {
            // Chunked only when it is the last coding applied.
            let last = header
                .value
                .rsplit(|b| *b == b',')
                .next()
                .unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if role == Role::Connection {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if http10 && token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
        if keep == Keep::All || role == Role::Engine {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(header.value),
            ) else {
                continue;
            };
            headers.append(name, value);
        }
    }
    let framing = if head_only || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::Close,
            (None, Some(0)) => Framing::Empty,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::Close,
        }
    };
    let parsed = Parsed {
        status,
        headers,
        framing,
        keep_alive: !close,
    };
    Ok(Some((parsed, used)))
}

/// The bytes of a request: request line, headers (a `Content-Length` added for a body, or
/// for an empty one where a body is expected), the blank line, the body. Returns where the
/// blank line begins (where another header may go in).
pub(super) fn serialize(head: &http::request::Parts, body: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        head.uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .as_bytes(),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // A body the scenario asked to send chunked goes as one chunk.
    let chunked = head
        .headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.as_bytes()
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
        });
    if chunked {
        let blank = out.len();
        out.extend_from_slice(b"\r\n");
        if !body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        return blank;
    }
    let expects_body = matches!(head.method.as_str(), "POST" | "PUT" | "PATCH");
    if !head.headers.contains_key(http::header::CONTENT_LENGTH)
        && (!body.is_empty() || expects_body)
    {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let blank = out.len();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    blank
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, keep: Keep, head_only: bool) -> Parsed {
        match parse_head(text.as_bytes(), keep, head_only) {
            Ok(Some((parsed, used))) => {
                assert_eq!(used, text.len(), "{text}");
                parsed
            }
            Ok(None) => panic!("partial: {text}"),
            Err(e) => panic!("{e:?}: {text}"),
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                false,
                Framing::Length(5),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                true,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
                false,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
                false,
                Framing::Empty,
            ),
            ("HTTP/1.1 100 Continue\r\n\r\n", false, Framing::Empty),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                false,
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
                false,
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                false,
                Framing::Close,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, Framing::Close),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 7\r\ncontent-length: 7\r\n\r\n",
                false,
                Framing::Length(7),
            ),
        ];
        for (text, head_only, framing) in cases {
            assert_eq!(
                head(text, Keep::Engine, head_only).framing,
                framing,
                "{text}"
            );
        }
        for bad in [
            "HTTP/1.1 200 OK\r\ncontent-length: 7\r\ncontent-length: 8\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(
                parse_head(bad.as_bytes(), Keep::All, false).is_err(),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", Keep::All, false),
            Ok(None)
        ));
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        let cases = [
            ("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nconnection: upgrade, Close\r\ncontent-length: 0\r\n\r\n",
                false,
            ),
            ("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", false),
            (
                "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n",
                true,
            ),
        ];
        for (text, keep_alive) in cases {
            assert_eq!(
                head(text, Keep::All, false).keep_alive,
                keep_alive,
                "{text}"
            );
        }
    }

    #[test]
    fn only_the_headers_the_engine_reads_are_kept_unless_all_are_asked_for() {
        let text = "HTTP/1.1 302 Found\r\nServer: x\r\nLocation: /next\r\nSet-Cookie: a=1\r\nServer-Timing: db;dur=3\r\nX-Timing-Info: {}\r\ncontent-length: 0\r\n\r\n";
        let engine = head(text, Keep::Engine, false).headers;
        let mut names: Vec<&str> = engine.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["location", "server-timing", "set-cookie", "x-timing-info"]
        );
        let all = head(text, Keep::All, false).headers;
        assert_eq!(all.len(), 6);
        assert_eq!(
            all.get("server").map(HeaderValue::as_bytes),
            Some(&b"x"[..])
        );
    }

    #[test]
    fn a_request_is_serialised_with_its_length() {
        let mut out = Vec::new();
        let (head, _) = http::Request::post("/v1/x?y=1")
            .header("host", "127.0.0.1:8080")
            .body(())
            .expect("request")
            .into_parts();
        serialize(&head, b"{}", &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /v1/x?y=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 2\r\n\r\n{}"
        );
        serialize(&head, b"", &mut out);
        assert!(String::from_utf8_lossy(&out).contains("content-length: 0\r\n"));
        let (get, _) = http::Request::get("/")
            .body(())
            .expect("request")
            .into_parts();
        serialize(&get, b"", &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "GET / HTTP/1.1\r\n\r\n");
    }
}
