use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_throttle")]
pub struct Model {
    /// The username's uniqueness key (a user by that name may not exist).
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_key: String,
    /// Failed (or unfinished) logins since the last success or reset.
    pub failures: i32,
    pub last_failure_at: DateTimeUtc,
    /// No login for this account is tried before this instant.
    pub blocked_until: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
