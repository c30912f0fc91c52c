package kit

// Status is the body of an accepted request with nothing else to say ({"status": "accepted"}).
type Status struct {
	Status string `json:"status"`
}
