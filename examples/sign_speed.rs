//! Measures one core's RSA256 signing speed with the signer `run` uses
//! (the `rsa` crate), so that a benchmark of `run` can say how fast this
//! machine was at the time: the VM's speed varies by more than two times
//! between periods, and signing is most of a run's CPU.
//!
//! `cargo run --release --example sign_speed -- KEY.pem [SIGNATURES]`

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use declare_batch::protocol::keys::load_private_key;
use declare_batch::protocol::signing::MessageSigner;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let key_path = args
        .next()
        .ok_or("usage: sign_speed KEY.pem [SIGNATURES]")?;
    let signatures: u32 = args.next().map_or(Ok(500), |n| n.parse())?;
    let signer = MessageSigner::new(load_private_key(Path::new(&key_path))?, "1");
    let body = br#"{"paymentRequestId":"2026112300000001","declarationAmount":{"value":"12345","currency":"CNY"}}"#;
    let started = Instant::now();
    for n in 0..signatures {
        let time = format!("2026-11-23T00:00:{:02}+08:00", n % 60);
        let header =
            signer.signature_header("/aps/api/v1/customs/declare", "SANDBOX_CLIENT", &time, body);
        std::hint::black_box(header);
    }
    let per_signature = started.elapsed().as_secs_f64() * 1000.0 / f64::from(signatures);
    println!(
        "rsa crate: {per_signature:.2} ms per signature on one core ({:.0}/s)",
        1000.0 / per_signature
    );
    Ok(())
}
