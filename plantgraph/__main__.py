from plantgraph.cli import main

main()
