//! Compiles `fjord/v1/control.proto` into Rust with tonic-prost-build.
//!
//! The `.proto` file is parsed by `protox`, a protobuf compiler written in Rust, so building
//! Fjord needs only a Rust toolchain: no `protoc` binary, no system packages
//! (`worker/tests/fresh_machine.rs` builds the workspace with no `protoc` on the PATH).

fn main() {
    println!("cargo:rerun-if-changed=fjord/v1/control.proto");
    let descriptors = match protox::compile(["fjord/v1/control.proto"], ["."]) {
        Ok(descriptors) => descriptors,
        Err(e) => panic!("cannot parse fjord/v1/control.proto: {e}"),
    };
    if let Err(e) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)
    {
        panic!("cannot generate Rust code from fjord/v1/control.proto: {e}");
    }
}
