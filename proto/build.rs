//! Generates the tonic/prost code of `proto/rfm/v1/rfm.proto` with protox (a
//! protobuf compiler in Rust), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["rfm/v1/rfm.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(files)?;
    Ok(())
}
