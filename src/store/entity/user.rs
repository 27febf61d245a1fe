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
}

impl ActiveModelBehavior for ActiveModel {}
