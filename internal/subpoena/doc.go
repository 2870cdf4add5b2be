// Package subpoena holds the subpoena test (DESIGN.md, promises P1–P5): a
// scripted workload runs through a real sottod process and real clients,
// then everything the server holds is searched for what the workload
// used, as if it had been handed over under a subpoena.
//
// The workload: three accounts with usernames and profile names, each
// with a second device linked through the device-link flow; 1:1 messages
// between every pair of accounts in both directions from both devices;
// delivery and read receipts; typing indicators; a username lookup and a
// contact link; an attachment encrypted on the client (AES-256-GCM) and
// uploaded and downloaded through the attachment API. Every request
// carries made-up X-Forwarded-For, X-Real-IP, Forwarded and User-Agent
// headers, and the test's own HTTP requests come from a second loopback
// address. Every plaintext, username, profile name, avatar and file
// content is a unique canary.
//
// What is searched: every row of every table of the database (SQLite, and
// PostgreSQL when TEST_POSTGRES_URL is set), the mailbox queue's keys and
// values, the raw bytes of every file in the data directory (database,
// write-ahead logs, queue files, attachment blobs) while the server runs
// and after it stopped, every log line at -log-level debug, /metrics, and
// the configuration. It is searched for each canary and secret key as
// UTF-8, hex and base64 (at every alignment), for every IP address and
// user agent the workload used, for times finer than a day in database
// columns, and for rows and log lines that hold two accounts (a sender
// next to a recipient). Allowed: account and device ids, public keys,
// creation and last-seen days, and the server's own configured addresses.
//
// The test prints what the server holds, table by table, and checks that
// docs/what-the-server-stores.md names every table, column and data
// directory file, and nothing that does not exist.
//
// The package has no code besides its tests.
package subpoena
