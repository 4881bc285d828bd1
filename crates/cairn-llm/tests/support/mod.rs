//! A real HTTP/1.1 server on loopback, scripted per connection, for the provider wire tests.
//! Each accepted connection gets the next scripted reply; when the script runs out the
//! listener closes, so further connections are refused. Write errors end a reply quietly (a
//! client that cancels or times out closes its end) and are recorded, so a test can check that
//! the client really hung up.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One piece of a streamed body.
pub enum Frame {
    /// Bytes sent as one HTTP chunk (or as is, for a close-delimited body).
    Bytes(String),
    /// Say nothing for this long.
    Pause(Duration),
}

/// How a chunked stream ends.
pub enum End {
    /// The terminating zero-length chunk.
    Finish,
    /// Drop the connection without it.
    Cut,
    /// Go silent for this long, then drop.
    Hang(Duration),
}

pub enum Reply {
    /// `200 text/event-stream`, chunked, frames 2 ms apart unless paused.
    Stream { frames: Vec<Frame>, end: End },
    /// `200 text/event-stream` without chunked encoding: the body ends when the server closes.
    CloseDelimited { frames: Vec<Frame> },
    /// Any status with extra headers and a body.
    Status { code: u16, reason: &'static str, headers: Vec<(&'static str, String)>, body: String },
    /// Read the request, then say nothing for this long.
    Hang(Duration),
}

impl Reply {
    pub fn stream(frames: Vec<Frame>) -> Reply {
        Reply::Stream { frames, end: End::Finish }
    }
    pub fn status(code: u16, reason: &'static str, body: &str) -> Reply {
        Reply::Status { code, reason, headers: Vec::new(), body: body.into() }
    }
    pub fn with_header(self, name: &'static str, value: impl Into<String>) -> Reply {
        match self {
            Reply::Status { code, reason, mut headers, body } => {
                headers.push((name, value.into()));
                Reply::Status { code, reason, headers, body }
            }
            other => other,
        }
    }
}

/// A `data:`-only SSE event (OpenAI style).
pub fn data(d: &str) -> Frame {
    Frame::Bytes(format!("data: {d}\n\n"))
}

/// A named SSE event (Anthropic style).
pub fn event(name: &str, d: &str) -> Frame {
    Frame::Bytes(format!("event: {name}\ndata: {d}\n\n"))
}

/// What the server received on one connection.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub head: String,
    pub body: String,
    pub at: Instant,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
    /// A request header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// How a reply went: frames written before the end or a write error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub frames_written: usize,
    pub frames_total: usize,
    /// A write failed: the client had closed the connection.
    pub client_hung_up: bool,
}

pub struct Server {
    /// `http://127.0.0.1:port` (no path).
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Server {
    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
    /// The outcome of reply `i`, waiting up to `timeout` for it to finish.
    pub fn outcome(&self, i: usize, timeout: Duration) -> Option<Outcome> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(o) = self.outcomes.lock().unwrap().get(i) {
                return Some(*o);
            }
            if Instant::now() > until {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn serve(replies: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let (req_log, out_log) = (requests.clone(), outcomes.clone());
    thread::spawn(move || {
        for reply in replies {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let Some(recorded) = read_request(&mut stream) else { continue };
            req_log.lock().unwrap().push(recorded);
            let outcome = respond(&mut stream, reply);
            out_log.lock().unwrap().push(outcome);
        }
    });
    Server { base: format!("http://127.0.0.1:{port}"), requests, outcomes }
}

fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded { head, body: String::from_utf8(body).unwrap(), at: Instant::now() })
}

fn respond(stream: &mut TcpStream, reply: Reply) -> Outcome {
    let mut outcome = Outcome::default();
    if write_reply(stream, reply, &mut outcome).is_err() {
        outcome.client_hung_up = true;
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    outcome
}

fn write_frames(
    stream: &mut TcpStream,
    frames: Vec<Frame>,
    chunked: bool,
    outcome: &mut Outcome,
) -> std::io::Result<()> {
    outcome.frames_total = frames.iter().filter(|f| matches!(f, Frame::Bytes(_))).count();
    for f in frames {
        match f {
            Frame::Bytes(p) => {
                if chunked {
                    stream.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes())?;
                } else {
                    stream.write_all(p.as_bytes())?;
                }
                stream.flush()?;
                outcome.frames_written += 1;
                thread::sleep(Duration::from_millis(2));
            }
            Frame::Pause(d) => thread::sleep(d),
        }
    }
    Ok(())
}

fn write_reply(stream: &mut TcpStream, reply: Reply, outcome: &mut Outcome) -> std::io::Result<()> {
    match reply {
        Reply::Stream { frames, end } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            stream.flush()?;
            write_frames(stream, frames, true, outcome)?;
            match end {
                End::Finish => stream.write_all(b"0\r\n\r\n")?,
                End::Cut => {}
                End::Hang(d) => thread::sleep(d),
            }
        }
        Reply::CloseDelimited { frames } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            write_frames(stream, frames, false, outcome)?;
        }
        Reply::Status { code, reason, headers, body } => {
            let mut out = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            stream.write_all(out.as_bytes())?;
        }
        Reply::Hang(d) => thread::sleep(d),
    }
    Ok(())
}

/// `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), for `Retry-After` dates.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        MO[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn http_date_formats_the_rfc_example() {
    assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
}
