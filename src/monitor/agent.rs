//! A client of the JMeter PerfMon ServerAgent protocol, as Taurus's `server-agent` speaks it:
//! over TCP, send `test\n` and expect `Yep\n`; send `interval:N\n` (seconds) and
//! `metrics:a\tb\tc\n`; then the agent sends one line per interval with the values of those
//! metrics, tab-separated, in that order; `exit\n` ends the session. MMS's remote suites run an
//! agent of their own that speaks it with MMS metric names.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One agent: its address, the metrics asked for, the session while connected.
#[derive(Debug)]
pub struct Agent {
    address: String,
    metrics: Vec<String>,
    interval: Duration,
    session: Option<Session>,
}

#[derive(Debug)]
struct Session {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

/// The agent's default port.
const PORT: u16 = 4444;

impl Agent {
    /// `address` is `host:port` or `host` (port 4444).
    pub fn new(address: &str, metrics: &[String], interval: Duration) -> Self {
        let address = if address
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            address.to_owned()
        } else {
            format!("{address}:{PORT}")
        };
        Self {
            address,
            metrics: metrics.to_vec(),
            interval,
            session: None,
        }
    }

    async fn connect(&self) -> std::io::Result<Session> {
        let stream =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&self.address))
                .await
                .map_err(|_| std::io::Error::other("no connection within 5s"))??;
        let (read, mut writer) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        writer.write_all(b"test\n").await?;
        let answer = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .map_err(|_| std::io::Error::other("no answer to `test`"))??;
        if answer.as_deref().map(str::trim) != Some("Yep") {
            return Err(std::io::Error::other(format!(
                "not a ServerAgent: it answered {answer:?} to `test`"
            )));
        }
        let seconds = self.interval.as_secs().max(1);
        writer
            .write_all(
                format!("interval:{seconds}\nmetrics:{}\n", self.metrics.join("\t")).as_bytes(),
            )
            .await?;
        Ok(Session { lines, writer })
    }

    /// The latest values the agent sent (connecting first when needed); empty when it sent
    /// none or cannot be reached (it is tried again next time).
    pub async fn sample(&mut self) -> BTreeMap<String, f64> {
        if self.session.is_none() {
            self.session = self.connect().await.ok();
        }
        let Some(session) = &mut self.session else {
            return BTreeMap::new();
        };
        // Every line that has arrived, the last one wins; wait up to an interval for one.
        let mut latest = None;
        let mut wait = self.interval.max(Duration::from_millis(100));
        loop {
            match tokio::time::timeout(wait, session.lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    latest = Some(line);
                    wait = Duration::from_millis(1);
                }
                Ok(Ok(None) | Err(_)) => {
                    self.session = None;
                    break;
                }
                Err(_) => break,
            }
        }
        latest.map(|l| self.values(&l)).unwrap_or_default()
    }

    /// A line's tab-separated values by metric; values that are not numbers are left out.
    fn values(&self, line: &str) -> BTreeMap<String, f64> {
        self.metrics
            .iter()
            .zip(line.trim_end().split('\t'))
            .filter_map(|(m, v)| Some((m.clone(), v.trim().parse::<f64>().ok()?)))
            .collect()
    }

    /// Ends the session politely (`exit`).
    pub async fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            let _ = s.writer.write_all(b"exit\n").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A fake agent: answers `test`, records what it is asked, then sends a line of values
    /// every 50 ms.
    async fn fake_agent() -> (String, tokio::sync::oneshot::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut asked = Vec::new();
            let mut byte = [0u8; 1];
            while !asked.ends_with(b"test\n") {
                socket.read_exact(&mut byte).await.unwrap();
                asked.push(byte[0]);
            }
            socket.write_all(b"Yep\n").await.unwrap();
            while asked.iter().filter(|b| **b == b'\n').count() < 3 {
                socket.read_exact(&mut byte).await.unwrap();
                asked.push(byte[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&asked).into_owned());
            for i in 0.. {
                let line = format!("{}.5\t{}\tn/a\n", i, 100 + i);
                if socket.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (address, rx)
    }

    #[tokio::test]
    async fn speaks_the_serveragent_protocol() {
        let (address, asked) = fake_agent().await;
        let metrics = [
            "cpu".to_owned(),
            "total_workers".to_owned(),
            "memory".to_owned(),
        ];
        let mut agent = Agent::new(&address, &metrics, Duration::from_millis(200));
        let first = agent.sample().await;
        assert_eq!(
            asked.await.unwrap(),
            "test\ninterval:1\nmetrics:cpu\ttotal_workers\tmemory\n"
        );
        let later = agent.sample().await;
        assert!(
            first.contains_key("cpu") || later.contains_key("cpu"),
            "{first:?} {later:?}"
        );
        let workers = later["total_workers"];
        assert!(
            workers >= 100.0 && later["cpu"] == workers - 100.0 + 0.5,
            "{later:?}"
        );
        assert!(!later.contains_key("memory"), "not a number: left out");
        agent.close().await;
        // Nothing listens here: no values, no panic, tried again later.
        let mut nowhere = Agent::new("127.0.0.1:1", &metrics, Duration::from_millis(100));
        assert!(nowhere.sample().await.is_empty());
        assert_eq!(
            Agent::new("host", &metrics, Duration::ZERO).address,
            "host:4444"
        );
    }
}
