module mqtt5c

go 1.19
