print("pi0")
