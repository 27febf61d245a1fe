use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    #[sea_orm(unique)]
    pub username_key: String,
    pub password_hash: String,
    pub created_at: DateTimeUtc,
    pub disabled: bool,
    /// Which rule computed `username_key`: 1 NFKC + lower case (before migration 000004),
    /// 2 the UTS #39 skeleton of the RFC 8265 case-mapped form.
    pub key_version: i16,
    /// The user's roles, a JSON array of names (`auth::roles`).
    pub roles: String,
    /// Set when the user was deleted: the row stays, disabled and nameless, until the
    /// clean-up removes it, so every instance learns of the deletion.
    pub deleted_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
