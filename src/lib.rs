//! Switchyard: the front door of a multi-tenant HTTP service while it moves, route by route and
//! tenant by tenant, from a legacy monolith to new services.

pub mod shadow;
