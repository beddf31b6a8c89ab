// Package lease is the only package that knows the lease item: it reads and
// writes the KCL 2.x compatible lease table in DynamoDB. Every write that
// changes a held lease (take, renew, checkpoint, release) is a conditional
// write on the owner and counter the caller last saw, so a worker that lost
// its lease cannot write: it gets ErrLeaseLost instead.
package lease
