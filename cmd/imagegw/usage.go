package main

func usageCmd(args []string) error {
	return usageError{"usage: not available yet"}
}
