//! The wire messages of `/punchport/birthday/2`, as `prost` types for
//! `birthday.proto` next to this file (kept by hand in step with it: the
//! tags, labels and enum values below are the `.proto`'s; the round-trip
//! tests in `protocol.rs` check the encoding against bytes written out by
//! hand from the `.proto`).

#![allow(missing_docs, unreachable_pub, clippy::all)]

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Message {
    #[prost(enumeration = "message::Type", required, tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub hello: Option<Hello>,
    #[prost(message, optional, tag = "3")]
    pub ready: Option<Ready>,
    #[prost(message, optional, tag = "4")]
    pub won: Option<Won>,
    #[prost(message, optional, tag = "5")]
    pub done: Option<Done>,
}

pub mod message {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        Hello = 1,
        Ready = 2,
        Won = 3,
        Done = 4,
    }
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Hello {
    #[prost(uint32, required, tag = "1")]
    pub version: u32,
    #[prost(bool, required, tag = "2")]
    pub enabled: bool,
    #[prost(bytes = "vec", required, tag = "6")]
    pub nonce: Vec<u8>,
    #[prost(uint32, required, tag = "7")]
    pub attempt: u32,
    #[prost(message, repeated, tag = "8")]
    pub sockets: Vec<hello::Socket>,
}

pub mod hello {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum Mapping {
        Unknown = 0,
        EndpointIndependent = 1,
        EndpointDependent = 2,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum Family {
        Ipv4 = 4,
        Ipv6 = 6,
    }

    #[derive(Clone, PartialEq, Eq, ::prost::Message)]
    pub struct Socket {
        #[prost(enumeration = "Family", required, tag = "1")]
        pub family: i32,
        #[prost(enumeration = "Mapping", required, tag = "2")]
        pub mapping: i32,
        #[prost(bool, optional, tag = "3")]
        pub port_preserved: Option<bool>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub public: Option<Vec<u8>>,
    }
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Ready {
    #[prost(uint32, required, tag = "1")]
    pub sockets: u32,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Won {
    #[prost(uint32, required, tag = "1")]
    pub port: u32,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Done {
    #[prost(uint32, required, tag = "1")]
    pub sent: u32,
}
