//! [`Flag`]: a yes/no read from either engine. PostgreSQL has booleans; SQLite stores 0/1 and
//! its `EXISTS` is an integer, which sqlx's `Any` driver will not decode as `bool`.

use sqlx::{
    any::{Any, AnyTypeInfo, AnyTypeInfoKind, AnyValueRef},
    error::BoxDynError,
    Decode, Type,
};

/// A boolean column or expression: `bool` on PostgreSQL, a non-zero integer on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind() == AnyTypeInfoKind::Bool || ty.kind().is_integer()
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        match <bool as Decode<Any>>::decode(value.clone()) {
            Ok(b) => Ok(Flag(b)),
            Err(_) => <i64 as Decode<Any>>::decode(value).map(|n| Flag(n != 0)),
        }
    }
}
