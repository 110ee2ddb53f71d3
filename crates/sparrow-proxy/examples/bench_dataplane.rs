//! Load for `scripts/bench-dataplane.sh`: a server and clients on plain blocking sockets, so
//! the figures measure the network path, not the load generator.
//!
//! ```text
//! bench_dataplane server ADDR                  echo (first byte `e`) or sink (`s`) per connection
//! bench_dataplane rr ADDR COUNT SIZE           COUNT request/responses of SIZE bytes: p50 p99 in µs
//! bench_dataplane stream ADDR BYTES            BYTES one way, then the server's count: MB/s
//! bench_dataplane load ADDR CONNS COUNT SIZE   CONNS connections doing rr at once
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> anyhow::Result<&str> {
        args.get(i)
            .map(String::as_str)
            .context("missing argument (see the source's header)")
    };
    let num = |i: usize| -> anyhow::Result<usize> { Ok(arg(i)?.parse()?) };
    match arg(0)? {
        "server" => server(arg(1)?),
        "rr" => {
            let mut latencies = rr(arg(1)?, num(2)?, num(3)?)?;
            latencies.sort_unstable_by(f64::total_cmp);
            let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
            println!("{:.1} {:.1}", at(0.50), at(0.99));
            Ok(())
        }
        "stream" => stream(arg(1)?, num(2)?),
        "load" => {
            let (addr, conns, count, size) = (arg(1)?.to_owned(), num(2)?, num(3)?, num(4)?);
            let threads: Vec<_> = (0..conns)
                .map(|_| {
                    let addr = addr.clone();
                    std::thread::spawn(move || rr(&addr, count, size).map(drop))
                })
                .collect();
            for t in threads {
                t.join()
                    .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
            }
            Ok(())
        }
        other => bail!("unknown mode {other:?}: server, rr, stream or load"),
    }
}

fn server(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            let _ = serve(stream);
        });
    }
    Ok(())
}

fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut mode = [0u8; 1];
    stream.read_exact(&mut mode)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if mode[0] == b'e' {
            stream.write_all(&buf[..n])?;
        }
    }
    stream.write_all(&total.to_le_bytes())
}

fn connect(addr: &str, mode: u8) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    stream.write_all(&[mode])?;
    Ok(stream)
}

/// Latencies of `count` request/responses, in microseconds.
fn rr(addr: &str, count: usize, size: usize) -> anyhow::Result<Vec<f64>> {
    let mut stream = connect(addr, b'e')?;
    let request = vec![7u8; size];
    let mut response = vec![0u8; size];
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        stream.write_all(&request)?;
        stream.read_exact(&mut response)?;
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(latencies)
}

fn stream(addr: &str, bytes: usize) -> anyhow::Result<()> {
    let mut stream = connect(addr, b's')?;
    let chunk = vec![1u8; 64 * 1024];
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut total = [0u8; 8];
    stream.read_exact(&mut total)?;
    let seconds = start.elapsed().as_secs_f64();
    if u64::from_le_bytes(total) != bytes as u64 {
        bail!(
            "the server counted {} bytes, not {bytes}",
            u64::from_le_bytes(total)
        );
    }
    println!("{:.0}", bytes as f64 / seconds / 1e6);
    Ok(())
}
