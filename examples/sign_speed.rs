//! Measures one core's RSA256 signing speed with the signer `run` uses
//! (`aws-lc-rs` since issue 22, `ring` before) and, beside it, with the `rsa` crate's PKCS#1 v1.5 (0.10,
//! constant-time), so that a benchmark of `run` can say how fast this
//! machine was at the time: the VM's speed varies by more than two times
//! between periods, and signing is most of a run's CPU.
//!
//! `cargo run --release --example sign_speed -- KEY.pem [SIGNATURES]`

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use declare_batch::protocol::keys::{load_private_key, load_signer};
use rsa::signature::Signer;

const BODY: &[u8] = br#"{"paymentRequestId":"2026112300000001","declarationAmount":{"value":"12345","currency":"CNY"}}"#;

/// How long each signer signs before it is timed: in a fresh process the
/// first few hundred signatures ran up to half again slower than the rest
/// (the core's clock rising, the key's first uses), which made a count of
/// 500 read 0.33-0.47 ms where 4,000 read 0.30.
const WARM_UP: Duration = Duration::from_millis(300);

/// Milliseconds per call of `sign` over `count` calls, after `WARM_UP`.
fn per_call(count: u32, mut sign: impl FnMut(u32)) -> f64 {
    let warming = Instant::now();
    let mut n = 0;
    while warming.elapsed() < WARM_UP {
        sign(n);
        n = n.wrapping_add(1);
    }
    let started = Instant::now();
    for n in 0..count {
        sign(n);
    }
    started.elapsed().as_secs_f64() * 1000.0 / f64::from(count)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let key_path = args
        .next()
        .ok_or("usage: sign_speed KEY.pem [SIGNATURES]")?;
    let signatures: u32 = args.next().map_or(Ok(500), |n| n.parse())?;
    let signer = load_signer(Path::new(&key_path), "1")?;
    let ours_ms = per_call(signatures, |n| {
        let time = format!("2026-11-23T00:00:{:02}+08:00", n % 60);
        let header =
            signer.signature_header("/aps/api/v1/customs/declare", "SANDBOX_CLIENT", &time, BODY);
        std::hint::black_box(header);
    });
    println!(
        "our signer:        {ours_ms:.3} ms per signature on one core ({:.0}/s)",
        1000.0 / ours_ms
    );
    let rsa_key = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(load_private_key(
        Path::new(&key_path),
    )?);
    let rsa_ms = per_call(signatures.div_ceil(4), |n| {
        let content = format!("POST /aps/api/v1/customs/declare\nSANDBOX_CLIENT.{n}.");
        std::hint::black_box(rsa_key.sign(content.as_bytes()));
    });
    println!(
        "rsa 0.10 crate:    {rsa_ms:.3} ms per signature on one core ({:.0}/s)",
        1000.0 / rsa_ms
    );
    Ok(())
}
