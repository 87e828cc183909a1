print("spython-bench: first output", flush=True)
