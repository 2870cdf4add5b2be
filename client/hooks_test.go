package client

import (
	"context"

	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
)

// SendReceiptForTest sends a read receipt naming any ids at all, as a
// hostile client would (the silent-receipt probe); the client's own
// MarkRead names only messages it received.
func SendReceiptForTest(ctx context.Context, c *Client, to AccountID, ids []MessageID) error {
	return c.sendReceipt(ctx, to, ids, contentpb.ReceiptMessage_READ)
}
