package sso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// PutConnection validates c and stores it as its tenant's connection,
// replacing any. If c has a MetadataURL and no Metadata, the metadata is
// fetched first (MetadataFetchedAt is set to now). It returns the
// connection as stored, an *InputError for an unacceptable field, a
// *FetchError if the metadata cannot be fetched, or a wrapped store
// error.
func (p *Provider) PutConnection(ctx context.Context, c Connection) (Connection, error) {
	c = c.clone()
	now := p.cfg.Now()
	if c.MetadataURL != "" {
		if _, err := metadataURL(c.MetadataURL, p.cfg.AllowInsecureMetadata); err != nil {
			return Connection{}, err
		}
		if c.Metadata == "" {
			if err := checkTenant(c.Tenant); err != nil {
				return Connection{}, err
			}
			data, err := p.FetchMetadata(ctx, c.MetadataURL)
			if err != nil {
				return Connection{}, err
			}
			c.Metadata, c.MetadataFetchedAt = string(data), now
		}
	} else {
		c.MetadataFetchedAt = time.Time{}
	}
	if err := c.Validate(now); err != nil {
		return Connection{}, err
	}
	if err := p.cfg.Stores.Connections.PutConnection(ctx, c); err != nil {
		return Connection{}, storeErr("put connection", err)
	}
	return c, nil
}

// Connection returns tenant's connection, ErrNotFound if it has none, or
// a wrapped store error.
func (p *Provider) Connection(ctx context.Context, tenant string) (Connection, error) {
	if err := checkTenant(tenant); err != nil {
		return Connection{}, err
	}
	c, err := p.cfg.Stores.Connections.Connection(ctx, tenant)
	if err != nil {
		return Connection{}, storeErr("get connection", err)
	}
	return c, nil
}

// DeleteConnection removes tenant's connection (SSO is then off for the
// tenant), or returns ErrNotFound.
func (p *Provider) DeleteConnection(ctx context.Context, tenant string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if err := p.cfg.Stores.Connections.DeleteConnection(ctx, tenant); err != nil {
		return storeErr("delete connection", err)
	}
	p.cache.Delete(tenant)
	return nil
}

// FetchMetadata fetches an IdP metadata document: GET with
// Config.MetadataTimeout, status 200, at most Config.MaxMetadataBytes. It
// does not parse the document. Errors are *InputError (unacceptable URL)
// or *FetchError.
func (p *Provider) FetchMetadata(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := metadataURL(rawURL, p.cfg.AllowInsecureMetadata)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.MetadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &FetchError{Err: err}
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, &FetchError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &FetchError{Status: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxMetadataBytes+1))
	if err != nil {
		return nil, &FetchError{Status: resp.StatusCode, Err: err}
	}
	if int64(len(data)) > p.cfg.MaxMetadataBytes {
		return nil, &FetchError{Status: resp.StatusCode, Err: errors.New("metadata is larger than the limit")}
	}
	return data, nil
}

// RefreshMetadata fetches tenant's metadata again from its MetadataURL
// and, if it parses (and, when the connection has
// MetadataSigningCertificates, carries a valid signature by one of them:
// see ParseSignedMetadata) and names the same IdP entity ID, stores it with
// ConnectionStore.UpdateMetadata (set if newer, and only while the URL is
// unchanged). It reports whether the stored connection changed. On any
// failure the stored metadata, the last good copy, is left as it is. A
// connection without a MetadataURL is left alone (false, nil).
//
// A different entity ID is refused (*InputError): the administrator
// accepts a new IdP by putting the connection again.
func (p *Provider) RefreshMetadata(ctx context.Context, tenant string) (bool, error) {
	c, err := p.Connection(ctx, tenant)
	if err != nil {
		return false, err
	}
	if c.MetadataURL == "" {
		return false, nil
	}
	data, err := p.FetchMetadata(ctx, c.MetadataURL)
	if err != nil {
		return false, err
	}
	now := p.cfg.Now()
	idp, err := c.parseMetadata(data, now)
	if err != nil {
		return false, err
	}
	if old, err := parseIdP([]byte(c.Metadata)); err == nil && old.EntityID != "" && old.EntityID != idp.EntityID {
		return false, &InputError{Field: "Metadata", Reason: "names another entity ID than the stored metadata; put the connection again to accept it"}
	}
	changed, err := p.cfg.Stores.Connections.UpdateMetadata(ctx, tenant, c.MetadataURL, string(data), now)
	if err != nil {
		return false, storeErr("update metadata", err)
	}
	return changed, nil
}

// Refresher keeps the metadata of connections with a MetadataURL fresh.
// Run it in one goroutine per replica (concurrent refreshes are safe:
// the store keeps the newest copy). Tenants and Provider are required.
type Refresher struct {
	Provider *Provider
	// Tenants lists the tenants to look at (typically every tenant; those
	// without a connection or a MetadataURL are skipped).
	Tenants func(ctx context.Context) ([]string, error)
	// MaxAge is the age from which metadata is fetched again. Default 1
	// hour.
	MaxAge time.Duration
	// RetryAfter is the wait after a failed fetch. Default 5 minutes.
	RetryAfter time.Duration
	// Every is how often Run looks. Default 1 minute.
	Every time.Duration
	// OnRefresh, if set, is called after each attempt, outside any lock,
	// for logging and auditing: err is nil on success (changed reports
	// whether the stored copy changed), else the reason the last good copy
	// was kept.
	OnRefresh func(tenant string, changed bool, err error)

	mu    sync.Mutex
	retry map[string]time.Time // tenant -> no attempt before
}

// RefreshDue makes one pass: for each tenant whose connection has a
// MetadataURL and metadata older than MaxAge (or never fetched), and
// whose last failure is older than RetryAfter, it calls RefreshMetadata.
// It returns an error only if Tenants fails; per-tenant failures go to
// OnRefresh.
func (r *Refresher) RefreshDue(ctx context.Context) error {
	if r.Provider == nil || r.Tenants == nil {
		return errors.New("sso: Refresher needs Provider and Tenants")
	}
	maxAge, retryAfter := r.MaxAge, r.RetryAfter
	if maxAge <= 0 {
		maxAge = time.Hour
	}
	if retryAfter <= 0 {
		retryAfter = 5 * time.Minute
	}
	tenants, err := r.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("sso: listing tenants: %w", err)
	}
	p := r.Provider
	for _, t := range tenants {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := p.cfg.Now()
		r.mu.Lock()
		wait := r.retry[t]
		r.mu.Unlock()
		if now.Before(wait) {
			continue
		}
		c, err := p.Connection(ctx, t)
		if err != nil || c.MetadataURL == "" || now.Sub(c.MetadataFetchedAt) < maxAge {
			if err != nil && !errors.Is(err, ErrNotFound) && r.OnRefresh != nil {
				r.OnRefresh(t, false, err)
			}
			continue
		}
		changed, err := p.RefreshMetadata(ctx, t)
		r.mu.Lock()
		if r.retry == nil {
			r.retry = make(map[string]time.Time)
		}
		if err != nil {
			r.retry[t] = now.Add(retryAfter)
		} else {
			delete(r.retry, t)
		}
		r.mu.Unlock()
		if r.OnRefresh != nil {
			r.OnRefresh(t, changed, err)
		}
	}
	return nil
}

// Run calls RefreshDue at once and then every Every until ctx is done;
// it returns ctx's error. A failure of Tenants is reported to OnRefresh
// with the tenant "".
func (r *Refresher) Run(ctx context.Context) error {
	every := r.Every
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.RefreshDue(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r.OnRefresh != nil {
				r.OnRefresh("", false, err) // Tenants failed
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
