package sqlstoretest

func childMain() int { return 0 }
