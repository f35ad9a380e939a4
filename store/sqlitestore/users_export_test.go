package sqlitestore

// SetSummaryChunk makes ListUserSummaries read at most n users per query.
func SetSummaryChunk(s *Store, n int) { s.Users.chunk = n }
