use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Hex SHA-256 of the token; the token itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub session_id: Uuid,
    pub issued_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// When it stopped being live: spent by a rotation, or superseded by a replay.
    pub spent_at: Option<DateTimeUtc>,
    /// When, spent, it was presented again inside the grace window (allowed once).
    pub replayed_at: Option<DateTimeUtc>,
    /// Killed by a replay of its parent inside the grace window, not spent by a rotation.
    pub superseded: bool,
}

impl ActiveModelBehavior for ActiveModel {}
