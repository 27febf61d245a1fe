use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub algorithm: String,
    /// base64 of the key material (a secret or a private key): never logged.
    pub material: String,
    pub created_at: DateTimeUtc,
    /// When the key starts signing; `None` (rows from before rotation existed) means
    /// `created_at`.
    pub activates_at: Option<DateTimeUtc>,
    /// The key-encryption key that sealed `material` (hex of the first bytes of its
    /// SHA-256); `None`: the material is in the clear.
    pub kek_id: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
