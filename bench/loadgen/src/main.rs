//! Open-loop HTTP/1.1 load at a fixed rate, for `bench/gateway.sh`.
//!
//! Debian's `wrk` (4.1) has no fixed-rate mode (that is wrk2's `-R`), and a closed
//! loop cannot say what latency looks like at half of the peak rate: it measures
//! the peak. This sends request `k` at `start + k / rate` whatever happened to
//! earlier ones, over `--connections` keep-alive connections (one thread each,
//! one request in flight per connection), and measures each latency from the
//! moment the request was *due*, as wrk2 does: when every connection is busy and
//! a request goes out late, the wait counts (no coordinated omission). The
//! latency from the moment it was actually written is reported beside it.
//!
//! Several targets can run at once, each with its own URL, headers, rate and
//! connections: `bench/gateway.sh` sends a trickle of requests straight to
//! core beside the load through the gateway, so that both see the same moments
//! of the host, and their difference is what the gateway added.
//!
//! ```text
//! anno-loadgen --duration 15 --warmup 3 \
//!     --url http://127.0.0.1:5210/v1/crawl?limit=1 -H 'Authorization: Bearer …' --rate 4000 --connections 64 \
//!     --url http://127.0.0.1:5213/v1/crawl?limit=1 -H 'Authorization: Bearer …' --rate 400 --connections 8
//! ```
//!
//! For each target, in the order given, a line for people and then one for
//! scripts: `RESULT target=N key=value …` (latencies in µs).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: anno-loadgen [--duration 15] [--warmup 3] TARGET [TARGET...]
  TARGET: --url http://HOST:PORT/PATH [-H 'Name: value']... [--method GET] [--body TEXT] \\
          --rate PER_SECOND [--connections 64]
  Options after a --url are that target's; the targets run at the same time.";

/// One stream of requests: its own URL, rate and connections.
#[derive(Debug)]
struct Target {
    url: String,
    headers: Vec<String>,
    method: String,
    body: Option<String>,
    rate: f64,
    connections: usize,
}

#[derive(Debug)]
struct Args {
    targets: Vec<Target>,
    duration: Duration,
    warmup: Duration,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args { targets: Vec::new(), duration: Duration::from_secs(15), warmup: Duration::from_secs(3) };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let seconds = |v: String| v.parse::<f64>().map(Duration::from_secs_f64).map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--url" => parsed.targets.push(Target {
                url: value()?,
                headers: Vec::new(),
                method: "GET".to_owned(),
                body: None,
                rate: 0.0,
                connections: 64,
            }),
            "--duration" => parsed.duration = seconds(value()?)?,
            "--warmup" => parsed.warmup = seconds(value()?)?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "-H" | "--header" | "--method" | "--body" | "--rate" | "--connections" => {
                let given = value()?;
                let target = parsed.targets.last_mut().ok_or_else(|| format!("{flag} comes after a --url"))?;
                match flag.as_str() {
                    "--method" => target.method = given,
                    "--body" => target.body = Some(given),
                    "--rate" => target.rate = given.parse().map_err(|e| format!("--rate: {e}"))?,
                    "--connections" => target.connections = given.parse().map_err(|e| format!("--connections: {e}"))?,
                    _ => target.headers.push(given),
                }
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let incomplete = |t: &Target| t.url.is_empty() || t.rate <= 0.0 || t.connections == 0;
    if parsed.targets.is_empty() || parsed.targets.iter().any(incomplete) || parsed.duration.is_zero() {
        return Err(USAGE.to_owned());
    }
    Ok(parsed)
}

/// `http://host:port/path?query` → (`host:port`, `/path?query`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    Ok((authority, path.to_owned()))
}

fn request_bytes(target: &Target, authority: &str, path: &str) -> Vec<u8> {
    let mut text = format!("{} {path} HTTP/1.1\r\nHost: {authority}\r\n", target.method);
    for header in &target.headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    if let Some(body) = &target.body {
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        text.push_str("\r\n");
    }
    text.into_bytes()
}

/// One keep-alive connection, reopened after an error or a `Connection: close`.
struct Connection {
    authority: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// Sends one request and reads the whole response; returns its status.
    fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.authority)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(30)))?;
                BufReader::with_capacity(64 * 1024, stream)
            }
        };
        stream.get_mut().write_all(request)?;
        let (status, keep) = read_response(&mut stream)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(status)
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn read_line(stream: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<()> {
    line.clear();
    if stream.read_line(line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    Ok(())
}

/// Reads a response (status line, headers, a body by length or chunks);
/// returns the status and whether the connection stays open.
fn read_response(stream: &mut BufReader<TcpStream>) -> io::Result<(u16, bool)> {
    let mut line = String::with_capacity(256);
    read_line(stream, &mut line)?;
    let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status line"))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    loop {
        read_line(stream, &mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { return Err(bad("header")) };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<u64>().map_err(|_| bad("content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep = !value.eq_ignore_ascii_case("close");
        }
    }
    if status < 200 || status == 204 || status == 304 {
        return Ok((status, keep));
    }
    if chunked {
        loop {
            read_line(stream, &mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size.trim(), 16).map_err(|_| bad("chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    read_line(stream, &mut line)?;
                    if line.trim_end().is_empty() {
                        return Ok((status, keep));
                    }
                }
            }
            discard(stream, size + 2)?;
        }
    }
    match length {
        Some(length) => {
            discard(stream, length)?;
            Ok((status, keep))
        }
        None => {
            io::copy(stream, &mut io::sink())?;
            Ok((status, false))
        }
    }
}

fn discard(stream: &mut BufReader<TcpStream>, bytes: u64) -> io::Result<()> {
    let copied = io::copy(&mut stream.by_ref().take(bytes), &mut io::sink())?;
    if copied == bytes { Ok(()) } else { Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body")) }
}

/// What one connection saw of the requests due in the measured window.
#[derive(Default)]
struct Tally {
    /// Due → response complete, µs.
    latency: Vec<u32>,
    /// Written → response complete, µs.
    service: Vec<u32>,
    /// Due → written, µs.
    late: Vec<u32>,
    non_2xx: u64,
    errors: u64,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Starts the connections of one target; request `k` is due at
/// `start + k / rate`, and those due before `start + warmup` are not counted.
fn launch(
    target: &Target,
    start: Instant,
    warmup: Duration,
    duration: Duration,
) -> Result<Vec<JoinHandle<Tally>>, String> {
    let (authority, path) = split_url(&target.url)?;
    let request: Arc<[u8]> = request_bytes(target, &authority, &path).into();
    let interval_ns = 1e9 / target.rate;
    let total = ((warmup + duration).as_secs_f64() * target.rate).ceil() as u64;
    let measured_from = (warmup.as_secs_f64() * target.rate).ceil() as u64;
    let next = Arc::new(AtomicU64::new(0));
    Ok((0..target.connections)
        .map(|_| {
            let (request, next, authority) = (request.clone(), next.clone(), authority.clone());
            std::thread::spawn(move || {
                let mut connection = Connection { authority, stream: None };
                let mut tally = Tally::default();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total {
                        return tally;
                    }
                    let due = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let sent = Instant::now();
                    let outcome = connection.exchange(&request);
                    let done = Instant::now();
                    if k < measured_from {
                        continue;
                    }
                    match outcome {
                        Ok(status) => {
                            if !(200..300).contains(&status) {
                                tally.non_2xx += 1;
                            }
                            tally.latency.push(micros(done - due));
                            tally.service.push(micros(done - sent));
                            tally.late.push(micros(sent.saturating_duration_since(due)));
                        }
                        Err(_) => tally.errors += 1,
                    }
                }
            })
        })
        .collect())
}

/// The tallies of a target's connections, as one.
fn gather(workers: Vec<JoinHandle<Tally>>) -> Result<Tally, String> {
    let mut all = Tally::default();
    for worker in workers {
        let t = worker.join().map_err(|_| "a connection thread panicked".to_owned())?;
        all.latency.extend(t.latency);
        all.service.extend(t.service);
        all.late.extend(t.late);
        all.non_2xx += t.non_2xx;
        all.errors += t.errors;
    }
    for samples in [&mut all.latency, &mut all.service, &mut all.late] {
        samples.sort_unstable();
    }
    Ok(all)
}

/// A line for people and a `RESULT` line for scripts, of target `number`.
fn report(number: usize, target: &Target, all: &Tally, measured_for: f64) {
    let rps = all.latency.len() as f64 / measured_for;
    let ms = |us: u32| f64::from(us) / 1000.0;
    let l = &all.latency;
    println!(
        "{}: {:.0} req/s offered, {rps:.0} req/s done over {} connections; latency from due time: \
         p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; from send: p50 {:.3} ms, p99 {:.3} ms; \
         sent late by p99 {:.3} ms; {} non-2xx, {} errors",
        target.url,
        target.rate,
        target.connections,
        ms(percentile(l, 50.0)),
        ms(percentile(l, 90.0)),
        ms(percentile(l, 99.0)),
        ms(percentile(l, 99.9)),
        ms(percentile(l, 100.0)),
        ms(percentile(&all.service, 50.0)),
        ms(percentile(&all.service, 99.0)),
        ms(percentile(&all.late, 99.0)),
        all.non_2xx,
        all.errors,
    );
    println!(
        "RESULT target={number} rate={:.0} requests={} rps={rps:.0} p50_us={} p90_us={} p99_us={} p999_us={} \
         max_us={} svc_p50_us={} svc_p99_us={} late_p99_us={} non2xx={} errors={}",
        target.rate,
        all.latency.len(),
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 99.9),
        percentile(l, 100.0),
        percentile(&all.service, 50.0),
        percentile(&all.service, 99.0),
        percentile(&all.late, 99.0),
        all.non_2xx,
        all.errors,
    );
}

fn run(args: &Args) -> Result<(), String> {
    let start = Instant::now() + Duration::from_millis(200);
    let mut launched = Vec::with_capacity(args.targets.len());
    for target in &args.targets {
        launched.push(launch(target, start, args.warmup, args.duration)?);
    }
    let mut tallies = Vec::with_capacity(launched.len());
    for workers in launched {
        tallies.push(gather(workers)?);
    }
    let measured_for = Instant::now().saturating_duration_since(start + args.warmup).as_secs_f64();
    for (number, (target, tally)) in args.targets.iter().zip(&tallies).enumerate() {
        report(number + 1, target, tally, measured_for.max(args.duration.as_secs_f64()));
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(args) => match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:5213/v1/crawl?limit=1").unwrap(),
            ("127.0.0.1:5213".to_owned(), "/v1/crawl?limit=1".to_owned())
        );
        assert_eq!(split_url("http://localhost").unwrap(), ("localhost:80".to_owned(), "/".to_owned()));
        assert!(split_url("https://example.com/").is_err());
    }

    fn parse(line: &str) -> Result<Args, String> {
        parse_args(line.split(' ').map(str::to_owned))
    }

    #[test]
    fn options_after_a_url_are_that_targets() {
        let args = parse(
            "--duration 5 --url http://a:1/x -H A:1 --rate 100 --url http://b:2/y --rate 10 \
                          --connections 8 --method POST --body z -H B:2 --warmup 1",
        )
        .unwrap();
        assert_eq!((args.duration, args.warmup), (Duration::from_secs(5), Duration::from_secs(1)));
        let [a, b] = &args.targets[..] else { panic!("two targets") };
        assert_eq!(
            (a.url.as_str(), &a.headers[..], a.rate, a.connections),
            ("http://a:1/x", &["A:1".to_owned()][..], 100.0, 64)
        );
        assert_eq!((a.method.as_str(), &a.body), ("GET", &None));
        assert_eq!(
            (b.url.as_str(), &b.headers[..], b.rate, b.connections),
            ("http://b:2/y", &["B:2".to_owned()][..], 10.0, 8)
        );
        assert_eq!((b.method.as_str(), b.body.as_deref()), ("POST", Some("z")));
    }

    #[test]
    fn a_target_needs_a_url_and_a_rate() {
        assert!(parse("--rate 100 --url http://a:1/").unwrap_err().contains("after a --url"));
        assert!(parse("--url http://a:1/").is_err(), "no rate");
        assert!(parse("--url http://a:1/ --rate 5 --url http://b:1/").is_err(), "the second has no rate");
        assert!(parse("--duration 5").is_err(), "no target");
        assert!(parse("--url http://a:1/ --rate x").unwrap_err().contains("--rate"));
    }

    #[test]
    fn two_targets_run_at_once_each_at_its_rate() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let mut socket = BufReader::new(socket.unwrap());
                std::thread::spawn(move || {
                    let mut line = String::new();
                    loop {
                        let mut first = String::new();
                        if socket.read_line(&mut first).unwrap_or(0) == 0 {
                            return;
                        }
                        while socket.read_line(&mut line).is_ok() && line.trim_end() != "" {
                            line.clear();
                        }
                        let status = if first.contains("/b") { "404 Not Found" } else { "200 OK" };
                        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
                        if socket.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let args = parse(&format!(
            "--warmup 0.2 --duration 1 --url http://{authority}/a --rate 200 --connections 4 \
             --url http://{authority}/b --rate 50 --connections 2"
        ))
        .unwrap();
        let start = Instant::now() + Duration::from_millis(50);
        let launched: Vec<_> =
            args.targets.iter().map(|t| launch(t, start, args.warmup, args.duration).unwrap()).collect();
        let tallies: Vec<Tally> = launched.into_iter().map(|w| gather(w).unwrap()).collect();
        // Exactly the requests due in the measured second, whatever the host's pace.
        assert_eq!((tallies[0].latency.len(), tallies[0].non_2xx, tallies[0].errors), (200, 0, 0));
        assert_eq!((tallies[1].latency.len(), tallies[1].non_2xx, tallies[1].errors), (50, 50, 0));
        assert!(tallies[0].latency.is_sorted());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[], 99.0), 0);
    }

    #[test]
    fn responses_are_read_by_length_and_by_chunks() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 4096];
            for answer in [
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_owned(),
                "HTTP/1.1 429 Too Many Requests\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n"
                    .to_owned(),
                "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_owned(),
            ] {
                let _ = socket.read(&mut buffer).unwrap();
                socket.write_all(answer.as_bytes()).unwrap();
            }
        });
        let mut connection = Connection { authority, stream: None };
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(connection.exchange(request).unwrap(), 200);
        assert_eq!(connection.exchange(request).unwrap(), 429);
        assert_eq!(connection.exchange(request).unwrap(), 204);
        assert!(connection.stream.is_none(), "Connection: close ends the connection");
        server.join().unwrap();
    }
}
