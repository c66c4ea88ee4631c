//! Compiles `fjord/v1/control.proto` into Rust with tonic-prost-build.
//!
//! Needs `protoc` (Debian package `protobuf-compiler`, installed by `scripts/install-deps.sh`);
//! set `PROTOC` to use another one.

fn main() {
    println!("cargo:rerun-if-changed=fjord/v1/control.proto");
    if let Err(e) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["fjord/v1/control.proto"], &["."])
    {
        panic!(
            "cannot compile fjord/v1/control.proto: {e}\n\
             protoc is needed: run scripts/install-deps.sh (Debian package protobuf-compiler) \
             or set PROTOC to the path of a protoc binary"
        );
    }
}
