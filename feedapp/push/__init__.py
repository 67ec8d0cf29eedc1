"""Web Push (RFC 8030, VAPID RFC 8292, aes128gcm RFC 8291): keys, subscriptions, the outbox and its delivery; no Flask."""
