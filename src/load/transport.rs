//! The transport seam: sends one HTTP request and returns its [`Exchange`] (status, headers,
//! [`Timings`] of connect, response head and end), streaming the body chunk by chunk, each
//! with its arrival time, into a [`BodySink`] as it arrives (a whole-body sink for
//! assertions, a server-sent-events sink for token streams). The scenario interpreter (`vu.rs`) builds requests
//! and judges what comes back; it never touches a connection. Plain HTTP/1.1 with keep-alive
//! goes over each user's own connections ([`Http::direct`]); TLS, HTTP/2 and the rest through
//! reqwest's pooled client ([`via_reqwest`]). Another transport (gRPC) fits beside these.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, HeaderValue};

use super::h1::{self, Broken, Conn, Keep};

/// What reads a response body as it arrives: each chunk with its arrival time since the
/// request was sent. An error ends the exchange as that failure (the transport adds its
/// timings).
pub(super) trait BodySink: Send {
    fn chunk(&mut self, data: &[u8], at: Duration) -> Result<(), Failure>;
}

/// Reads the whole body, up to `max-body` bytes (a larger or endless body is a failure and
/// is not read further), and keeps it when something reads it (assertions, extractors, an
/// LLM response); otherwise only counts it.
#[derive(Debug)]
pub(super) struct WholeBody {
    cap: u64,
    keep: bool,
    seen: u64,
    kept: bytes::BytesMut,
}

impl WholeBody {
    pub(super) fn new(cap: u64, keep: bool) -> Self {
        Self {
            cap,
            keep,
            seen: 0,
            kept: bytes::BytesMut::new(),
        }
    }

    /// An empty sink of the same kind (the body of a followed redirect).
    pub(super) fn fresh(&self) -> Self {
        Self::new(self.cap, self.keep)
    }

    /// Bytes read.
    pub(super) fn seen(&self) -> u64 {
        self.seen
    }

    /// The body, when kept (else empty).
    pub(super) fn into_bytes(self) -> bytes::Bytes {
        self.kept.freeze()
    }
}

impl BodySink for WholeBody {
    fn chunk(&mut self, data: &[u8], _at: Duration) -> Result<(), Failure> {
        if self.seen + data.len() as u64 > self.cap {
            return Err(Failure::too_large(self.cap));
        }
        self.seen += data.len() as u64;
        if self.keep {
            self.kept.extend_from_slice(data);
        }
        Ok(())
    }
}

/// One user's HTTP/1.1 keep-alive connections by (host, port), and its cookies.
#[derive(Debug, Default)]
pub(super) struct Http {
    /// A user talks to one origin or a few: a list, searched port first.
    connections: Vec<((String, u16), Conn)>,
    jar: Option<Arc<Jar>>,
    /// The bytes of a request built for one send (reused from send to send).
    out: Vec<u8>,
}

impl Http {
    pub(super) fn new(jar: Option<Arc<Jar>>) -> Self {
        Self {
            connections: Vec::new(),
            jar,
            out: Vec::new(),
        }
    }

    /// Sends over this user's keep-alive HTTP/1.1 connection to the request's origin, opening
    /// it (and timing the connect) when there is none or the server closed it.
    pub(super) async fn direct(
        &mut self,
        builder: reqwest::RequestBuilder,
        keep: Keep,
        sent: Instant,
        body_sink: &mut impl BodySink,
    ) -> Result<Exchange, Failure> {
        let (mut head, body, url, key) = on_the_wire(builder)?;
        if let Some(jar) = &self.jar
            && !head.headers.contains_key(http::header::COOKIE)
            && let Some(cookies) = reqwest::cookie::CookieStore::cookies(jar.as_ref(), &url)
        {
            head.headers.insert(http::header::COOKIE, cookies);
        }
        let body = whole(body).await?;
        let mut out = std::mem::take(&mut self.out);
        h1::serialize(&head, &body, &mut out);
        let head_only = head.method == http::Method::HEAD;
        let exchange = self
            .exchange(&out, head_only, keep, &key, Arc::new(url), sent, body_sink)
            .await;
        self.out = out;
        exchange
    }

    /// A request built once to be sent many times ([`Http::send_prepared`]).
    pub(super) async fn prepare(&self, builder: reqwest::RequestBuilder) -> Option<Prepared> {
        let (head, body, url, key) = on_the_wire(builder).ok()?;
        let body = whole(body).await.ok()?;
        let mut wire = Vec::new();
        let blank = h1::serialize(&head, &body, &mut wire);
        Some(Prepared {
            wire: wire.into(),
            blank,
            head_only: head.method == http::Method::HEAD,
            sets_cookie: head.headers.contains_key(http::header::COOKIE),
            url: Arc::new(url),
            key,
        })
    }

    /// Sends a request prepared once (no variables) as its bytes, with the user's cookies
    /// as they are now (the server may have set some since) when there are any.
    pub(super) async fn send_prepared(
        &mut self,
        prepared: &Prepared,
        keep: Keep,
        sent: Instant,
        body_sink: &mut impl BodySink,
    ) -> Result<Exchange, Failure> {
        let cookies = match &self.jar {
            Some(jar) if !prepared.sets_cookie => {
                reqwest::cookie::CookieStore::cookies(jar.as_ref(), &prepared.url)
            }
            _ => None,
        };
        // With cookies, the bytes go out with a Cookie header added before the blank line.
        let mut out = std::mem::take(&mut self.out);
        let request: &[u8] = match cookies {
            None => &prepared.wire,
            Some(cookies) => {
                out.clear();
                out.extend_from_slice(&prepared.wire[..prepared.blank]);
                out.extend_from_slice(b"cookie: ");
                out.extend_from_slice(cookies.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&prepared.wire[prepared.blank..]);
                &out
            }
        };
        let exchange = self
            .exchange(
                request,
                prepared.head_only,
                keep,
                &prepared.key,
                prepared.url.clone(),
                sent,
                body_sink,
            )
            .await;
        self.out = out;
        exchange
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &mut self,
        request: &[u8],
        head_only: bool,
        keep: Keep,
        key: &(String, u16),
        url: Arc<reqwest::Url>,
        sent: Instant,
        body_sink: &mut impl BodySink,
    ) -> Result<Exchange, Failure> {
        let mut ct = None;
        let mut again = true;
        let head = loop {
            let found = self
                .connections
                .iter()
                .position(|((host, port), _)| *port == key.1 && *host == key.0);
            let reused = found.is_some_and(|i| self.connections[i].1.idle());
            let at = match (found, reused) {
                (Some(i), true) => i,
                _ => {
                    if let Some(i) = found {
                        self.connections.swap_remove(i);
                    }
                    let started = Instant::now();
                    let conn = Conn::open(&key.0, key.1).await.map_err(|f| f.with_ct(ct))?;
                    ct = Some(started.elapsed());
                    self.connections.push((key.clone(), conn));
                    self.connections.len() - 1
                }
            };
            let conn = &mut self.connections[at].1;
            match conn
                .round_trip(request, head_only, keep, sent, body_sink)
                .await
            {
                Ok(head) => {
                    if !conn.idle() {
                        self.connections.swap_remove(at);
                    }
                    break head;
                }
                // A kept-alive connection the server closed meanwhile: the request goes
                // again, once, on a new connection.
                Err(Broken::Early(_)) if reused && again => {
                    again = false;
                    self.connections.swap_remove(at);
                }
                Err(Broken::Early(f) | Broken::Failed(f)) => {
                    self.connections.swap_remove(at);
                    return Err(f.with_ct(ct));
                }
            }
        };
        let status = head.status;
        if let Some(jar) = &self.jar
            && head.headers.contains_key(http::header::SET_COOKIE)
        {
            let mut cookies = head.headers.get_all(http::header::SET_COOKIE).iter();
            reqwest::cookie::CookieStore::set_cookies(jar.as_ref(), &mut cookies, &url);
        }
        let redirect_to = matches!(status, 301 | 302 | 303 | 307 | 308)
            .then(|| {
                head.headers
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .flatten();
        Ok(Exchange {
            status,
            headers: head.headers,
            url,
            timings: Timings {
                connect: ct,
                headers: head.at,
                end: head.end,
            },
            redirect_to,
        })
    }
}

/// A request body as bytes (a multipart upload is a stream: read whole).
async fn whole(body: reqwest::Body) -> Result<bytes::Bytes, Failure> {
    if let Some(bytes) = body.as_bytes() {
        return Ok(bytes::Bytes::copy_from_slice(bytes));
    }
    http_body_util::BodyExt::collect(body)
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| Failure::of(&e))
}

/// A request as it goes on the wire over a direct connection: origin-form target, a Host
/// header, reqwest's default Accept; with its URL and its connection (host, port).
type Wire = (
    http::request::Parts,
    reqwest::Body,
    reqwest::Url,
    (String, u16),
);

fn on_the_wire(builder: reqwest::RequestBuilder) -> Result<Wire, Failure> {
    let request = builder.build().map_err(|e| Failure::of(&e))?;
    let url = request.url().clone();
    // The host as written (an IPv6 literal in brackets) for the Host header; as an address
    // (no brackets) to connect to.
    let host = url.host_str().unwrap_or_default().to_owned();
    let address = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let request: http::Request<reqwest::Body> =
        http::Request::try_from(request).map_err(|e| Failure::of(&e))?;
    let (mut head, body) = request.into_parts();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    if let Ok(uri) = target.parse() {
        head.uri = uri;
    }
    if !head.headers.contains_key(http::header::HOST) {
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&authority) {
            head.headers.insert(http::header::HOST, v);
        }
    }
    if !head.headers.contains_key(http::header::ACCEPT) {
        head.headers
            .insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    Ok((head, body, url, (address, port)))
}

/// A request ready for a direct connection: its bytes, where a header may go in, its URL and
/// the connection it goes over (host, port).
#[derive(Debug)]
pub(super) struct Prepared {
    wire: bytes::Bytes,
    blank: usize,
    head_only: bool,
    /// The scenario sets its own Cookie header (the user's cookies are not added).
    sets_cookie: bool,
    url: Arc<reqwest::Url>,
    key: (String, u16),
}

/// A response: its head and timings (its body went to the [`BodySink`]).
pub(super) struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    /// The final URL (after redirects).
    pub url: Arc<reqwest::Url>,
    pub timings: Timings,
    /// `Location` of a redirect the direct path did not follow itself.
    pub redirect_to: Option<String>,
}

/// When each part of an exchange happened, from the request's send time (the open model's
/// scheduled time, so a queue before sending counts).
#[derive(Clone, Copy, Debug)]
pub(super) struct Timings {
    /// Opening the connection, when this request opened one.
    pub connect: Option<Duration>,
    /// The response head (status and headers): Taurus's latency.
    pub headers: Duration,
    /// The end of the body: the response time.
    pub end: Duration,
}

/// A request that got no (complete) response: the `rcException` kind and its cause.
#[derive(Debug)]
pub(super) struct Failure {
    pub kind: &'static str,
    pub message: String,
    pub lt: Option<Duration>,
    pub ct: Option<Duration>,
}

impl Failure {
    pub(super) fn new(kind: &'static str, message: String) -> Self {
        Self {
            kind,
            message,
            lt: None,
            ct: None,
        }
    }

    pub(super) fn of(e: &reqwest::Error) -> Self {
        Self::new(error_kind(e), error_message(e))
    }

    /// A response body larger than the scenario's `max-body`.
    pub(super) fn too_large(cap: u64) -> Self {
        Self::new(
            "body",
            format!(
                "the response body is larger than max-body ({cap} bytes); raise `max-body` if it is expected"
            ),
        )
    }

    pub(super) fn timeout(after: Duration) -> Self {
        Self::new(
            "timeout",
            format!("no response after {}", humantime::format_duration(after)),
        )
    }

    fn with_ct(mut self, ct: Option<Duration>) -> Self {
        self.ct = ct;
        self
    }
}

/// Sends through reqwest's pooled client (TLS, HTTP/2, redirects, its own connect timing).
pub(super) async fn via_reqwest(
    builder: reqwest::RequestBuilder,
    sent: Instant,
    body_sink: &mut impl BodySink,
) -> Result<Exchange, Failure> {
    let mut response = builder.send().await.map_err(|e| Failure::of(&e))?;
    let lt = sent.elapsed();
    let status = response.status().as_u16();
    let url = Arc::new(response.url().clone());
    let headers = response.headers().clone();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            let mut f = Failure::of(&e);
            f.lt = Some(lt);
            f
        })?;
        let Some(chunk) = chunk else { break };
        body_sink.chunk(&chunk, sent.elapsed()).map_err(|mut f| {
            f.lt = Some(lt);
            f
        })?;
    }
    Ok(Exchange {
        status,
        headers,
        url,
        timings: Timings {
            connect: None,
            headers: lt,
            end: sent.elapsed(),
        },
        redirect_to: None,
    })
}

pub(super) fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request"
    }
}

/// The innermost cause, which names what went wrong ("Connection refused").
fn error_message(e: &reqwest::Error) -> String {
    innermost(e)
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    /// Records each chunk; tells the server when the first one arrived.
    struct Recorder {
        chunks: Vec<(Vec<u8>, Duration)>,
        first: Option<oneshot::Sender<()>>,
    }

    impl BodySink for Recorder {
        fn chunk(&mut self, data: &[u8], at: Duration) -> Result<(), Failure> {
            self.chunks.push((data.to_vec(), at));
            if let Some(tx) = self.first.take() {
                let _ = tx.send(());
            }
            Ok(())
        }
    }

    /// A server on a free loopback port that answers one request with a chunked body whose
    /// second chunk is sent only once the client has seen the first.
    async fn two_chunk_server() -> (u16, oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (seen_tx, seen_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
                .await;
            let _ = socket.flush().await;
            if seen_rx.await.is_ok() {
                let _ = socket.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await;
            }
        });
        (port, seen_tx)
    }

    /// Both paths hand the body over chunk by chunk as it arrives: the server holds the
    /// second chunk back until the sink has the first, so a transport that read the body
    /// whole before handing it over would never finish.
    #[tokio::test]
    async fn the_body_streams_into_the_sink_as_it_arrives() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        for direct in [true, false] {
            let (port, seen) = two_chunk_server().await;
            let mut sink = Recorder {
                chunks: Vec::new(),
                first: Some(seen),
            };
            let client = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client");
            let builder = client.get(format!("http://127.0.0.1:{port}/stream"));
            let sent = Instant::now();
            let exchange = if direct {
                Http::new(None)
                    .direct(builder, Keep::All, sent, &mut sink)
                    .await
            } else {
                via_reqwest(builder, sent, &mut sink).await
            };
            let x = exchange.unwrap_or_else(|f| panic!("direct {direct}: {f:?}"));
            assert_eq!(x.status, 200);
            let texts: Vec<&[u8]> = sink.chunks.iter().map(|(c, _)| c.as_slice()).collect();
            assert_eq!(texts, [&b"first"[..], &b"second"[..]], "direct {direct}");
            let (first, second) = (sink.chunks[0].1, sink.chunks[1].1);
            assert!(x.timings.headers <= first && first <= second && second <= x.timings.end);
            if direct {
                assert!(
                    x.timings.connect.is_some(),
                    "the direct path times its connect"
                );
            }
        }
    }

    /// What a scripted server does after reading a request.
    #[derive(Clone, Copy)]
    enum Then {
        /// Answers with these bytes and keeps the connection.
        Answer(&'static str),
        /// Answers with these bytes and closes the connection.
        AnswerClose(&'static str),
        /// Closes the connection without answering.
        Close,
        /// Never answers.
        Hang,
    }

    /// A server on a free loopback port that follows `script`, one entry per request it
    /// reads (bodiless requests), in order across its connections; counts the connections.
    async fn scripted(script: Vec<Then>) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            let mut hung = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut seen = Vec::new();
                loop {
                    let mut chunk = [0u8; 1024];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(n) if n > 0 => seen.extend_from_slice(&chunk[..n]),
                            _ => break,
                        }
                    }
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                        break;
                    };
                    seen.drain(..end + 4);
                    match script.next() {
                        Some(Then::Answer(bytes)) => {
                            let _ = socket.write_all(bytes.as_bytes()).await;
                        }
                        Some(Then::AnswerClose(bytes)) => {
                            let _ = socket.write_all(bytes.as_bytes()).await;
                            break;
                        }
                        Some(Then::Hang) => {
                            hung.push(socket);
                            break;
                        }
                        Some(Then::Close) | None => break,
                    }
                }
            }
        });
        (port, accepted)
    }

    /// Sends GET (or HEAD) `/` over `http` and collects the body.
    async fn get(http: &mut Http, port: u16, head: bool) -> Result<(Exchange, Vec<u8>), Failure> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let url = format!("http://127.0.0.1:{port}/");
        let builder = match head {
            true => client.head(url),
            false => client.get(url),
        };
        let mut sink = WholeBody::new(1 << 20, true);
        let x = http
            .direct(builder, Keep::All, Instant::now(), &mut sink)
            .await?;
        Ok((x, sink.into_bytes().to_vec()))
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    /// Keep-alive: requests share one connection; one the server closed meanwhile is
    /// replaced (the request goes again, once) and one it said it would close is not reused.
    #[tokio::test]
    async fn connections_are_kept_replaced_when_closed_and_not_reused_after_close() {
        use std::sync::atomic::Ordering;
        let script = vec![
            Then::Answer(OK),
            Then::Answer(OK),
            Then::Close,
            Then::AnswerClose(
                "HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok",
            ),
            Then::Answer(OK),
        ];
        let (port, accepted) = scripted(script).await;
        let mut http = Http::new(None);
        let (first, _) = get(&mut http, port, false).await.expect("first");
        assert!(first.timings.connect.is_some());
        let (second, body) = get(&mut http, port, false).await.expect("second");
        assert_eq!((second.status, body.as_slice()), (200, &b"ok"[..]));
        assert!(second.timings.connect.is_none(), "kept alive");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // The server drops the kept connection on the third request: it goes again on a new
        // connection, which answers and says it closes.
        let (third, _) = get(&mut http, port, false)
            .await
            .expect("third, sent again");
        assert!(third.timings.connect.is_some());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let (fourth, _) = get(&mut http, port, false).await.expect("fourth");
        assert!(fourth.timings.connect.is_some(), "not reused after close");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// A new connection closed without an answer fails the request: it is not sent again.
    #[tokio::test]
    async fn a_fresh_connection_closed_without_an_answer_fails_once() {
        use std::sync::atomic::Ordering;
        let (port, accepted) = scripted(vec![Then::Close, Then::Answer(OK)]).await;
        let mut http = Http::new(None);
        let failure = get(&mut http, port, false).await.err().expect("fails");
        assert_eq!(failure.kind, "request");
        assert!(failure.ct.is_some(), "{failure:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// Chunked bodies (extensions, trailers), interim responses, HEAD, 204 and bodies to
    /// the end of the connection are each read to their end, and the connection goes on
    /// where it can.
    #[tokio::test]
    async fn bodies_are_framed_as_rfc_9112_says() {
        use std::sync::atomic::Ordering;
        let script = vec![
            Then::Answer(
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n",
            ),
            Then::Answer("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"),
            Then::Answer("HTTP/1.1 204 No Content\r\n\r\n"),
            Then::AnswerClose("HTTP/1.1 200 OK\r\n\r\nto the end"),
            Then::Answer(OK),
        ];
        let (port, accepted) = scripted(script).await;
        let mut http = Http::new(None);
        let (x, body) = get(&mut http, port, false).await.expect("chunked");
        assert_eq!((x.status, body.as_slice()), (200, &b"abc0123456789"[..]));
        let (x, body) = get(&mut http, port, true).await.expect("head");
        assert_eq!((x.status, body.len()), (200, 0));
        assert_eq!(
            x.headers.get("content-length").map(|v| v.as_bytes()),
            Some(&b"100"[..])
        );
        let (x, body) = get(&mut http, port, false).await.expect("204");
        assert_eq!((x.status, body.len()), (204, 0));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection so far");
        let (x, body) = get(&mut http, port, false).await.expect("to the end");
        assert_eq!((x.status, body.as_slice()), (200, &b"to the end"[..]));
        let (x, _) = get(&mut http, port, false).await.expect("after");
        assert!(x.timings.connect.is_some());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// A body cut short fails as `body` with the time of its head; a request whose answer
    /// never came (a timeout drops it) leaves its connection unused after it.
    #[tokio::test]
    async fn cut_bodies_fail_and_abandoned_connections_are_not_reused() {
        use std::sync::atomic::Ordering;
        let script = vec![
            Then::AnswerClose("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"),
            Then::Hang,
            Then::Answer(OK),
        ];
        let (port, accepted) = scripted(script).await;
        let mut http = Http::new(None);
        let failure = get(&mut http, port, false).await.err().expect("cut short");
        assert_eq!(failure.kind, "body", "{failure:?}");
        assert!(failure.lt.is_some());
        let hung =
            tokio::time::timeout(Duration::from_millis(50), get(&mut http, port, false)).await;
        assert!(hung.is_err(), "no answer");
        let (x, body) = get(&mut http, port, false)
            .await
            .expect("after the timeout");
        assert_eq!(body, b"ok");
        assert!(x.timings.connect.is_some(), "a new connection");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// An IPv6 literal (`http://[::1]:port/`) is connected to as an address.
    #[tokio::test]
    async fn an_ipv6_literal_is_an_address() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
            return; // no IPv6 loopback on this host
        };
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(OK.as_bytes()).await;
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let builder = client.get(format!("http://[::1]:{port}/"));
        let mut sink = WholeBody::new(1024, true);
        let x = Http::new(None)
            .direct(builder, Keep::All, Instant::now(), &mut sink)
            .await
            .expect("answered over IPv6");
        assert_eq!(x.status, 200);
    }

    /// The whole-body sink refuses a body over its cap: the exchange fails as too large.
    #[test]
    fn the_whole_body_sink_keeps_up_to_its_cap() {
        for keep in [true, false] {
            let mut whole = WholeBody::new(8, keep);
            assert!(whole.chunk(b"12345", Duration::ZERO).is_ok());
            let refused = whole
                .chunk(b"6789", Duration::ZERO)
                .expect_err("over the cap");
            assert_eq!(refused.kind, "body");
            assert_eq!(whole.seen(), 5, "counted either way");
            let kept: &[u8] = if keep { b"12345" } else { b"" };
            assert_eq!(&whole.into_bytes()[..], kept);
        }
    }
}
