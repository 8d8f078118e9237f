-- "My requests": a principal's requests in every state, newest first (Listings::requests_of).
CREATE INDEX requests_by_principal ON requests (principal, created_at DESC, id DESC);
