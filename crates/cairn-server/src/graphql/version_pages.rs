//! Pages of artifact versions, under the three connection types W&B's schema gives them:
//! a collection's versions (`VersionedArtifactConnection`, edges carry `vN`), a run's
//! outputs (`ArtifactConnection`) and a run's inputs (`InputArtifactConnection`).
//! Clients name these types in fragments (`fragment … on InputArtifactConnection`), so
//! each must exist under its own name even though all three hold the same fields here.
//!
//! Input: versions already selected and checked by the caller. Output: one page.

use async_graphql::SimpleObject;

use super::artifacts::Artifact;
use super::paging::{PageInfo, page};
use crate::db::ArtifactRow;

macro_rules! version_connection {
    ($(#[$doc:meta])* $connection:ident, $edge:ident) => {
        #[derive(SimpleObject)]
        pub(super) struct $edge {
            node: Artifact,
            cursor: String,
            /// `vN`.
            version: String,
        }

        $(#[$doc])*
        #[derive(SimpleObject)]
        pub(super) struct $connection {
            edges: Vec<$edge>,
            page_info: PageInfo,
            total_count: i64,
        }

        impl $connection {
            /// One page of `versions`.
            pub(super) fn page(
                versions: Vec<ArtifactRow>,
                after: Option<&str>,
                first: Option<i32>,
            ) -> $connection {
                let (edges, page_info, total_count) =
                    page(versions, after, first, |(row, cursor)| $edge {
                        version: format!("v{}", row.version_index.unwrap_or(0)),
                        node: Artifact(row),
                        cursor,
                    });
                $connection {
                    edges,
                    page_info,
                    total_count,
                }
            }
        }
    };
}

version_connection!(
    /// The committed versions of a collection.
    VersionedArtifactConnection,
    VersionedArtifactEdge
);
version_connection!(
    /// The versions a run logged.
    ArtifactConnection,
    ArtifactEdge
);
version_connection!(
    /// The versions a run used.
    InputArtifactConnection,
    InputArtifactEdge
);
