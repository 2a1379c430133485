//! The APIC / NX-OS wire protocol as pure data: query building, response and push parsing, the
//! `Mo` model and its merge rules. No I/O and no web-sys: it compiles and tests natively.
//! PROTOCOL.md in the repository's notes is the ground truth; section numbers refer to it.

mod commit;
mod doc;
mod encoding;
mod error;
mod json;
mod mo;
mod query;
mod response;
mod stream;
mod urls;
mod xml;

pub use commit::{delete_request, Change, WriteRequest, DEFAULT_STATUS};
pub use doc::EntryError;
pub use encoding::{check_dn, is_class_name};
pub use error::{DeviceError, ErrorKind, MalformedError, QueryError, ResponseError};
pub use mo::{diff_attributes, Applied, Attributes, Mo, Status, Store};
pub use query::{
    Format, Query, QueryOptions, QueryTarget, RspPropInclude, RspSubtree, Target, MAX_REQUEST_LINE,
};
pub use response::{
    parse_error, parse_login, parse_mo, parse_notification, parse_query, parse_refresh, LoginInfo,
    Notification, QueryResponse, DEFAULT_REFRESH_TIMEOUT_SECS,
};
pub use stream::{NotificationReader, Slice, STREAM_BYTES};
pub use urls::{
    login_body, login_path, logout_body, subscription_refresh_path, BaseUrl, UrlError, LOGOUT_PATH,
    REFRESH_SESSION_PATH,
};
