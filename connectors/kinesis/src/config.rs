//! Where a stream is and how to reach it: region, endpoint and credentials (Flink's
//! `aws.region`, `aws.endpoint`, `aws.credentials.provider` options).

/// How the client gets its credentials.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum AwsCredentials {
    /// The SDK's default chain (Flink's `AUTO`): environment variables, the shared profile
    /// files, web identity tokens (EKS service accounts), container and instance metadata.
    #[default]
    Auto,
    /// Static keys (Flink's `BASIC`).
    Basic {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
    },
}

impl std::fmt::Debug for AwsCredentials {
    // The secret never goes into logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCredentials::Auto => f.write_str("Auto"),
            AwsCredentials::Basic { access_key_id, .. } => f
                .debug_struct("Basic")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"***")
                .finish(),
        }
    }
}

/// The Kinesis endpoint a source or sink talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisConfig {
    /// The AWS region (`aws.region`), such as `us-east-1`.
    pub region: String,
    /// An endpoint URL instead of the region's (`aws.endpoint`): a local server, a VPC
    /// endpoint. `http://` is allowed.
    pub endpoint: Option<String>,
    /// The credentials.
    pub credentials: AwsCredentials,
}

impl KinesisConfig {
    /// A configuration for `region` with the default credential chain.
    pub fn new(region: impl Into<String>) -> Self {
        KinesisConfig {
            region: region.into(),
            endpoint: None,
            credentials: AwsCredentials::Auto,
        }
    }

    /// The same with an endpoint URL.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The same with static credentials.
    pub fn basic_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = AwsCredentials::Basic {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        };
        self
    }

    /// Where requests go, for messages.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{e} ({})", self.region),
            None => format!("region {}", self.region),
        }
    }
}
