//! The transport seam: sends one HTTP request and returns its [`Exchange`] (status, headers,
//! [`Timings`] of connect, response head and end), streaming the body chunk by chunk, each
//! with its arrival time, into a [`BodySink`] as it arrives (a whole-body sink for
//! assertions, a server-sent-events sink for token streams). The scenario interpreter (`vu.rs`) builds requests
//! and judges what comes back; it never touches a connection. Plain HTTP/1.1 with keep-alive
//! goes over each user's own connections ([`Http::direct`]); TLS, HTTP/2 and the rest through
//! reqwest's pooled client ([`via_reqwest`]). Another transport (gRPC) fits beside these.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, HeaderValue};

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
    connections: HashMap<(String, u16), http1::SendRequest<reqwest::Body>>,
    jar: Option<Arc<Jar>>,
}

impl Http {
    pub(super) fn new(jar: Option<Arc<Jar>>) -> Self {
        Self {
            connections: HashMap::new(),
            jar,
        }
    }

    /// Sends over this user's keep-alive HTTP/1.1 connection to the request's origin, opening
    /// it (and timing the connect) when there is none or the server closed it.
    pub(super) async fn direct(
        &mut self,
        builder: reqwest::RequestBuilder,
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
        let request = http::Request::from_parts(head, body);
        self.exchange(request, &key, Arc::new(url), sent, body_sink)
            .await
    }

    /// A request built once to be sent many times ([`Http::send_prepared`]); `None` when its
    /// body is a stream (a multipart upload).
    pub(super) fn prepare(&self, builder: reqwest::RequestBuilder) -> Option<Prepared> {
        let (head, body, url, key) = on_the_wire(builder).ok()?;
        let body = bytes::Bytes::copy_from_slice(body.as_bytes()?);
        Some(Prepared {
            head,
            body,
            url: Arc::new(url),
            key,
        })
    }

    /// Sends a request prepared once (no variables): its head is copied, its body shared, the
    /// user's cookies added.
    pub(super) async fn send_prepared(
        &mut self,
        prepared: &Prepared,
        sent: Instant,
        body_sink: &mut impl BodySink,
    ) -> Result<Exchange, Failure> {
        let mut request = http::Request::new(reqwest::Body::from(prepared.body.clone()));
        *request.method_mut() = prepared.head.method.clone();
        *request.uri_mut() = prepared.head.uri.clone();
        *request.headers_mut() = prepared.head.headers.clone();
        // The user's cookies as they are now (the server may have set some since).
        if let Some(jar) = &self.jar
            && !prepared.head.headers.contains_key(http::header::COOKIE)
            && let Some(cookies) =
                reqwest::cookie::CookieStore::cookies(jar.as_ref(), &prepared.url)
        {
            request.headers_mut().insert(http::header::COOKIE, cookies);
        }
        let url = prepared.url.clone();
        self.exchange(request, &prepared.key, url, sent, body_sink)
            .await
    }

    async fn exchange(
        &mut self,
        request: http::Request<reqwest::Body>,
        key: &(String, u16),
        url: Arc<reqwest::Url>,
        sent: Instant,
        body_sink: &mut impl BodySink,
    ) -> Result<Exchange, Failure> {
        // A kept-alive connection the server closed meanwhile gives the request back unsent:
        // send it again, once, on a new connection.
        let mut ct = None;
        let mut request = Some(request);
        let response = loop {
            let Some(message) = request.take() else {
                return Err(Failure::new("request", "the connection closed".to_owned()));
            };
            let open = match self.connections.get_mut(key) {
                Some(sender) => sender.ready().await.is_ok(),
                None => false,
            };
            let fresh = match open {
                true => false,
                false => {
                    let started = Instant::now();
                    let sender = connect(&key.0, key.1).await.map_err(|f| f.with_ct(ct))?;
                    ct = Some(started.elapsed());
                    self.connections.insert(key.clone(), sender);
                    true
                }
            };
            let Some(sender) = self.connections.get_mut(key) else {
                continue;
            };
            match sender.try_send_request(message).await {
                Ok(response) => break response,
                Err(mut e) => {
                    self.connections.remove(key);
                    match e.take_message() {
                        Some(unsent) if !fresh => request = Some(unsent),
                        _ => return Err(Failure::hyper(e.error()).with_ct(ct)),
                    }
                }
            }
        };
        let lt = sent.elapsed();
        let status = response.status().as_u16();
        if let Some(jar) = &self.jar {
            let mut cookies = response.headers().get_all(http::header::SET_COOKIE).iter();
            reqwest::cookie::CookieStore::set_cookies(jar.as_ref(), &mut cookies, &url);
        }
        let redirect_to = matches!(status, 301 | 302 | 303 | 307 | 308)
            .then(|| {
                response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .flatten();
        let (parts, mut body) = response.into_parts();
        // Read as it streams, chunk by chunk into the sink: a sink that refuses more (a body
        // over `max-body`, an endless one) ends the exchange as a failure and the connection
        // is not reused.
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(|e| {
                let mut f = Failure::hyper(&e).with_ct(ct);
                f.lt = Some(lt);
                f
            })?;
            if let Some(data) = frame.data_ref()
                && let Err(mut f) = body_sink.chunk(data, sent.elapsed())
            {
                self.connections.clear();
                f.lt = Some(lt);
                f.ct = ct;
                return Err(f);
            }
        }
        Ok(Exchange {
            status,
            headers: parts.headers,
            url,
            timings: Timings {
                connect: ct,
                headers: lt,
                end: sent.elapsed(),
            },
            redirect_to,
        })
    }
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
    let host = url.host_str().unwrap_or_default().to_owned();
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
    Ok((head, body, url, (host, port)))
}

/// A request ready for a direct connection: its head, its body, its URL and the connection
/// it goes over (host, port).
#[derive(Debug)]
pub(super) struct Prepared {
    head: http::request::Parts,
    body: bytes::Bytes,
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

    fn io(kind: &'static str, e: &std::io::Error) -> Self {
        Self::new(kind, e.to_string())
    }

    fn hyper(e: &hyper::Error) -> Self {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_body_write_aborted() || e.is_incomplete_message() || e.is_parse() {
            "body"
        } else {
            "request"
        };
        Self::new(kind, innermost(e))
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

/// Opens an HTTP/1.1 connection; its driver runs as a task of its own.
async fn connect(host: &str, port: u16) -> Result<http1::SendRequest<reqwest::Body>, Failure> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| Failure::io("connect", &e))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| Failure::hyper(&e))?;
    tokio::spawn(connection);
    Ok(sender)
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
                Http::new(None).direct(builder, sent, &mut sink).await
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
